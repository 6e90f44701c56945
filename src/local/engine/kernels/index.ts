import { createJsKernels } from "./js.js";
import type { Kernels } from "./types.js";

export { createJsKernels } from "./js.js";
export type { AdamWParams, AttentionParams, GemmParams, Kernels } from "./types.js";

/** Which kernel implementation to use. */
export type KernelsChoice = "wasm" | "js";

export interface CreateKernelsOptions {
  /** Default "wasm": WebAssembly SIMD when it loads, else the pure-TS kernels. */
  prefer?: KernelsChoice;
  /** Threads for the wasm kernels (default: the machine's cores, at most 4). */
  threads?: number;
  /** Called with the reason when the wasm kernels were wanted but could not be used. */
  onFallback?: (reason: unknown) => void;
}

interface WasmKernelsModule {
  createWasmKernels(opts: { threads?: number }): Promise<Kernels>;
}

// A variable specifier so this file compiles before (and without) the wasm module; see the report
// in the commit history for the bundler entry this needs.
const WASM_MODULE = "./wasm/index.js";

/**
 * Create the compute kernels. With `prefer: "wasm"` (the default) this loads the WebAssembly SIMD
 * kernels and falls back to the pure-TypeScript ones when the module is absent or fails to start.
 */
export async function createKernels(opts: CreateKernelsOptions = {}): Promise<Kernels> {
  if ((opts.prefer ?? "wasm") === "js") return createJsKernels();
  try {
    const mod = (await import(/* @vite-ignore */ WASM_MODULE)) as Partial<WasmKernelsModule>;
    if (typeof mod.createWasmKernels !== "function")
      throw new Error("wasm kernels module has no createWasmKernels");
    return await mod.createWasmKernels(opts.threads === undefined ? {} : { threads: opts.threads });
  } catch (err) {
    opts.onFallback?.(err);
    return createJsKernels();
  }
}
