import { parentPort, workerData } from "node:worker_threads";
import { EngineCore, type EngineCoreOptions } from "./core/engine-core.js";
import {
  toWireError,
  toWireOutput,
  type WorkerRequest,
  type WorkerResponse,
} from "./core/protocol.js";
import { EngineRequestQueue } from "./core/request-queue.js";
import { type BlasSetting, createEngineKernels, type KernelsChoice } from "./kernels/index.js";
import type { EngineDatum } from "./train/datum.js";

/** What `createLocalEngine` passes to the worker. */
export interface EngineWorkerData {
  kernels: KernelsChoice;
  threads?: number;
  blas?: BlasSetting;
  core: EngineCoreOptions;
}

/*
 * The engine worker: owns the kernels, base models and adapters, and runs requests in arrival order
 * (a forward_backward submitted before an optim_step is applied before it), sample requests that
 * wait side by side as one batch (see EngineRequestQueue).
 */
async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("worker.ts must run as a worker thread");
  const data = workerData as EngineWorkerData;
  const { kernels, info } = await createEngineKernels(data.kernels, data.threads, data.blas);
  const core = new EngineCore(kernels, data.core);
  const queue = new EngineRequestQueue(core);

  const handle = async (
    req: WorkerRequest,
  ): Promise<{ result: unknown; transfer: ArrayBuffer[] }> => {
    const a = req.args;
    switch (req.method) {
      case "info":
        return { result: info, transfer: [] };
      case "listBaseModels":
        return { result: await core.listBaseModels(), transfer: [] };
      case "getBaseModel":
        return { result: await core.getBaseModel(a[0] as string), transfer: [] };
      case "createAdapter":
        return {
          result: await core.createAdapter(a[0] as string, a[1] as string, a[2] as never),
          transfer: [],
        };
      case "dropAdapter":
        return { result: core.dropAdapter(a[0] as string), transfer: [] };
      case "hasAdapter":
        return { result: core.hasAdapter(a[0] as string), transfer: [] };
      case "forwardBackward": {
        const out = await core.forwardBackward(
          a[0] as string,
          a[1] as EngineDatum[],
          a[2] as string,
          a[3] as never,
          a[4] as boolean,
        );
        const w = toWireOutput(out);
        return { result: w.value, transfer: w.transfer };
      }
      case "optimStep":
        return { result: core.optimStep(a[0] as string, a[1] as never), transfer: [] };
      case "saveAdapter":
        return {
          result: await core.saveAdapter(a[0] as string, a[1] as string, a[2] as never),
          transfer: [],
        };
      case "loadAdapter":
        return {
          result: await core.loadAdapter(a[0] as string, a[1] as string, a[2] as never),
          transfer: [],
        };
      case "exportAdapterState":
        return { result: core.exportAdapterState(a[0] as string), transfer: [] };
      case "sample":
        return { result: await queue.sample(a[0] as never), transfer: [] };
      case "close":
        await core.close();
        return { result: undefined, transfer: [] };
      default:
        throw new Error(`unknown engine method ${req.method}`);
    }
  };

  port.on("message", (req: WorkerRequest) => {
    // Sample requests go into the queue themselves (to be batched); everything else is one job.
    const result = req.method === "sample" ? handle(req) : queue.run(() => handle(req));
    result.then(
      (r) => port.postMessage({ id: req.id, ok: true, result: r.result }, r.transfer),
      (err: unknown) => port.postMessage({ id: req.id, ok: false, error: toWireError(err) }),
    );
    if (req.method === "close") result.finally(() => port.close()).catch(() => {});
  });
  port.postMessage({ id: 0, ok: true, result: "ready" } satisfies WorkerResponse);
}

main().catch((err) => {
  parentPort?.postMessage({ id: 0, ok: false, error: toWireError(err) } satisfies WorkerResponse);
});
