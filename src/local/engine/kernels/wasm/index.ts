import { availableParallelism } from "node:os";
import type { Kernels } from "../types.js";
import { chooseVariant, relaxedSimdSupported, type WasmKernelVariant } from "./binaries.js";
import { WasmKernels } from "./kernels.js";

export type { WasmKernelVariant } from "./binaries.js";
export { relaxedSimdSupported, WasmKernels };

/** Options of `createWasmKernels`. */
export interface WasmKernelOptions {
  /**
   * Threads including the calling one (default: available parallelism, at most 8). Each extra
   * thread is a `worker_threads` worker on the same shared memory.
   */
  threads?: number;
  /**
   * `true` requires the relaxed-SIMD build (fused multiply-add), `false` uses plain SIMD, default:
   * relaxed when the runtime validates it (on Node 20 this sets `--experimental-wasm-relaxed-simd`).
   */
  relaxedSimd?: boolean;
}

function defaultThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

/**
 * Creates the WebAssembly SIMD kernels synchronously (blocks while workers start, typically tens of
 * milliseconds). Call `dispose()` to stop the workers; they do not keep the process alive.
 */
export function createWasmKernelsSync(options: WasmKernelOptions = {}): WasmKernels {
  const variant: WasmKernelVariant = chooseVariant(options.relaxedSimd);
  return new WasmKernels(variant, options.threads ?? defaultThreads());
}

/** Creates the WebAssembly SIMD kernels. See `createWasmKernelsSync`. */
export async function createWasmKernels(options: WasmKernelOptions = {}): Promise<Kernels> {
  return createWasmKernelsSync(options);
}
