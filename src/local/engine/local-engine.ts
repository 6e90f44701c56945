import { Worker } from "node:worker_threads";
import { TinkerError, TinkerValidationError } from "../../client/errors.js";
import type { Datum } from "../../client/types/datum.js";
import type {
  ForwardBackwardOutput,
  OptimStepResponse,
  SampleResponse,
} from "../../client/types/outputs.js";
import type { AdamParams, LossFnConfig, LossFnType } from "../../client/types/params.js";
import type {
  AdapterInfo,
  BaseModelInfo,
  EngineSampleRequest,
  LocalEngine,
  ResolvedLoraConfig,
} from "./api.js";
import { EngineCore, type EngineCoreOptions } from "./core/engine-core.js";
import {
  fromWireError,
  fromWireOutput,
  type WireForwardBackwardOutput,
  type WorkerRequest,
  type WorkerResponse,
} from "./core/protocol.js";
import { EngineRequestQueue } from "./core/request-queue.js";
import { isPreset, listPresets } from "./io/presets.js";
import {
  type BlasSetting,
  createEngineKernels,
  type KernelsChoice,
  type KernelsInfo,
} from "./kernels/index.js";
import type { NamedTensor } from "./model/weights.js";
import { datumTransferList, toEngineDatum } from "./train/datum.js";
import type { EngineWorkerData } from "./worker.js";

/** Options of {@link createLocalEngine}. */
export interface LocalEngineOptions extends Omit<EngineCoreOptions, "modelDirs"> {
  /** Kernel implementation; default "wasm" (falls back to "js" when WebAssembly SIMD is unavailable). */
  kernels?: KernelsChoice;
  /** Threads for the wasm kernels (the engine worker plus helpers). Default: all cores, at most 8. */
  threads?: number;
  /**
   * Large matrix products through a system BLAS via the optional koffi package: "auto" finds one
   * (OpenBLAS, BLIS or MKL on Linux, Accelerate on macOS), "off" runs the wasm kernels only, a path
   * loads that library. The BLAS runs single-threaded on the engine thread while the wasm
   * helpers sleep (OpenBLAS's own threads can hang a later fork). Default: `TINKER_TS_BLAS`, else
   * "auto".
   */
  blas?: BlasSetting;
  /**
   * Receives the one line saying which kernels run (and how to get a faster backend), once per
   * process for each distinct line. Default: stderr.
   */
  logger?: { info(message: string): void };
  /** Hugging Face model folders: by name, or a list of folders (each served under its path). */
  modelDirs?: Readonly<Record<string, string>> | readonly string[];
  /**
   * Run the engine on the calling thread instead of a worker. Only for debugging and tests: compute
   * then blocks the event loop.
   */
  inProcess?: boolean;
}

/** Adapter state as named arrays (for persistence through the I/O layer, and tests). */
export interface AdapterState {
  baseModel: string;
  lora: ResolvedLoraConfig;
  weights: Map<string, NamedTensor>;
  optimizer: { tensors: Map<string, NamedTensor>; step: number };
}

/** The engine plus a few local-only extras. */
export interface LocalEngineHandle extends LocalEngine {
  /** Which kernels run the math, and why the wasm ones were not used (if so). */
  kernelsInfo(): Promise<KernelsInfo>;
  /** Copy of an adapter's weights and AdamW state. */
  exportAdapterState(adapterId: string): Promise<AdapterState>;
}

/**
 * Start the local engine. By default it runs on a worker thread (the calling thread only moves
 * messages; typed arrays are transferred, not serialised), holds base models and LoRA adapters,
 * and executes requests strictly in submission order.
 */
export async function createLocalEngine(opts: LocalEngineOptions = {}): Promise<LocalEngineHandle> {
  const { kernels = "wasm", threads, blas, logger, inProcess, modelDirs, ...rest } = opts;
  if (blas !== undefined && (typeof blas !== "string" || blas.trim() === "")) {
    throw new TinkerValidationError(
      `blas must be "auto", "off" or a path to a BLAS library, got ${JSON.stringify(blas)}`,
      "blas",
    );
  }
  const core: EngineCoreOptions = { ...rest };
  if (Array.isArray(core.presets)) {
    const unknown = core.presets.filter((name) => !isPreset(name));
    if (unknown.length > 0) {
      throw new TinkerValidationError(
        `unknown preset ${unknown.map((u) => JSON.stringify(u)).join(", ")}; available: ${listPresets()
          .map((p) => p.name)
          .join(", ")}`,
        "presets",
      );
    }
  }
  if (modelDirs) {
    core.modelDirs = Array.isArray(modelDirs)
      ? Object.fromEntries((modelDirs as readonly string[]).map((d) => [d, d]))
      : (modelDirs as Readonly<Record<string, string>>);
  }
  const engine = inProcess
    ? await inProcessEngine(kernels, threads, blas, core)
    : await startWorkerClient({
        kernels,
        ...(threads !== undefined ? { threads } : {}),
        ...(blas !== undefined ? { blas } : {}),
        core,
      });
  announce((await engine.kernelsInfo()).notice, logger);
  return engine;
}

const announced = new Set<string>();

function announce(line: string, logger: { info(message: string): void } | undefined): void {
  if (announced.has(line)) return;
  announced.add(line);
  if (logger) logger.info(line);
  else process.stderr.write(`${line}\n`);
}

async function startWorkerClient(data: EngineWorkerData): Promise<WorkerClient> {
  const client = new WorkerClient(data);
  await client.ready;
  return client;
}

/**
 * Start the engine worker. From the bundle, `worker.js` sits next to this file. From TypeScript
 * source (vitest, tsx), the worker first registers tsx's loader and then imports `worker.ts`.
 */
function startWorker(data: EngineWorkerData): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./worker.js", here), { workerData: data });
  const entry = new URL("./worker.ts", here).href;
  const boot = `import("tsx/esm/api").then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}

class WorkerClient implements LocalEngineHandle {
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;
  private dead: Error | null = null;

  constructor(data: EngineWorkerData) {
    this.worker = startWorker(data);
    this.worker.unref();
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.worker.on("message", (msg: WorkerResponse) => {
      if (msg.id === 0) {
        if (msg.ok) readyResolve();
        else readyReject(fromWireError(msg.error));
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (this.pending.size === 0) this.worker.unref();
      if (msg.ok) p.resolve(msg.result);
      else p.reject(fromWireError(msg.error));
    });
    const fail = (err: Error) => {
      this.dead = err;
      readyReject(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on("error", (err) =>
      fail(new TinkerError(`local engine worker crashed: ${err.message}`)),
    );
    this.worker.on("exit", (code) => {
      if (!this.dead) fail(new TinkerError(`local engine worker exited (code ${code})`));
    });
  }

  private call<T>(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.ref();
      this.worker.postMessage({ id, method, args } satisfies WorkerRequest, transfer);
    });
  }

  kernelsInfo() {
    return this.call<KernelsInfo>("info", []);
  }
  listBaseModels() {
    return this.call<BaseModelInfo[]>("listBaseModels", []);
  }
  getBaseModel(name: string) {
    return this.call<BaseModelInfo>("getBaseModel", [name]);
  }
  createAdapter(adapterId: string, baseModel: string, lora: ResolvedLoraConfig) {
    return this.call<void>("createAdapter", [adapterId, baseModel, lora]);
  }
  dropAdapter(adapterId: string) {
    return this.call<void>("dropAdapter", [adapterId]);
  }
  hasAdapter(adapterId: string) {
    return this.call<boolean>("hasAdapter", [adapterId]);
  }
  async forwardBackward(
    adapterId: string,
    data: readonly Datum[],
    lossFn: LossFnType,
    lossFnConfig: LossFnConfig | undefined,
    forwardOnly: boolean,
  ): Promise<ForwardBackwardOutput> {
    const wire = data.map((d, i) => toEngineDatum(d, i, true));
    const out = await this.call<WireForwardBackwardOutput>(
      "forwardBackward",
      [adapterId, wire, lossFn, lossFnConfig, forwardOnly],
      datumTransferList(wire),
    );
    return fromWireOutput(out);
  }
  optimStep(adapterId: string, adam: Required<AdamParams>) {
    return this.call<OptimStepResponse>("optimStep", [adapterId, adam]);
  }
  saveAdapter(adapterId: string, dir: string, opts: { optimizer: boolean }) {
    return this.call<void>("saveAdapter", [adapterId, dir, opts]);
  }
  loadAdapter(adapterId: string, dir: string, opts: { optimizer: boolean }) {
    return this.call<AdapterInfo>("loadAdapter", [adapterId, dir, opts]);
  }
  exportAdapterState(adapterId: string) {
    return this.call<AdapterState>("exportAdapterState", [adapterId]);
  }
  sample(request: EngineSampleRequest) {
    const prompt = request.prompt.slice();
    return this.call<SampleResponse>(
      "sample",
      [{ ...request, prompt }],
      [prompt.buffer as ArrayBuffer],
    );
  }
  async close(): Promise<void> {
    if (this.dead) return;
    await this.call<void>("close", []);
    await this.worker.terminate();
  }
}

async function inProcessEngine(
  kernels: KernelsChoice,
  threads: number | undefined,
  blas: BlasSetting | undefined,
  opts: EngineCoreOptions,
): Promise<LocalEngineHandle> {
  const { kernels: k, info } = await createEngineKernels(kernels, threads, blas);
  const core = new EngineCore(k, opts);
  // One request at a time, in order, sample requests side by side batched: as on the worker.
  const queue = new EngineRequestQueue(core);
  const run = <T>(f: () => T | Promise<T>): Promise<T> => queue.run(f);
  return {
    kernelsInfo: () => run(() => ({ ...info })),
    listBaseModels: () => run(() => core.listBaseModels()),
    getBaseModel: (name) => run(() => core.getBaseModel(name)),
    createAdapter: (id, base, lora) => run(() => core.createAdapter(id, base, lora)),
    dropAdapter: (id) => run(() => core.dropAdapter(id)),
    hasAdapter: (id) => run(() => core.hasAdapter(id)),
    forwardBackward: (id, data, fn, cfg, fwd) =>
      run(() =>
        core.forwardBackward(
          id,
          data.map((d, i) => toEngineDatum(d, i, false)),
          fn,
          cfg,
          fwd,
        ),
      ),
    optimStep: (id, adam) => run(() => core.optimStep(id, adam)),
    saveAdapter: (id, dir, o) => run(() => core.saveAdapter(id, dir, o)),
    loadAdapter: (id, dir, o) => run(() => core.loadAdapter(id, dir, o)),
    exportAdapterState: (id) => run(() => core.exportAdapterState(id)),
    sample: (req) => queue.sample(req),
    close: () => run(() => core.close()),
  };
}
