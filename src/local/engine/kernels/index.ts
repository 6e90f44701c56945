import { createJsKernels } from "./js.js";
import type { Kernels } from "./types.js";

export { createJsKernels } from "./js.js";
export type {
  AdamWParams,
  AttentionBackwardParams,
  AttentionForwardParams,
  AttentionParams,
  GemmParams,
  Kernels,
} from "./types.js";

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

/**
 * Create the compute kernels. With `prefer: "wasm"` (the default) this loads the WebAssembly SIMD
 * kernels and falls back to the pure-TypeScript ones when the module is absent or fails to start.
 */
export async function createKernels(opts: CreateKernelsOptions = {}): Promise<Kernels> {
  if ((opts.prefer ?? "wasm") === "js") return createJsKernels();
  try {
    const { createWasmKernels } = await import("./wasm/index.js");
    return await createWasmKernels(opts.threads === undefined ? {} : { threads: opts.threads });
  } catch (err) {
    opts.onFallback?.(err);
    return createJsKernels();
  }
}

/** Which kernels run the math, and why the wasm ones were not used (if so). */
export interface KernelsInfo {
  kernels: string;
  threads: number;
  fallbackReason?: string;
}

/** {@link createKernels} for an engine: the kernels and the {@link KernelsInfo} it reports. */
export async function createEngineKernels(
  prefer: KernelsChoice,
  threads: number | undefined,
): Promise<{ kernels: Kernels; info: KernelsInfo }> {
  let fallbackReason: string | undefined;
  const kernels = await createKernels({
    prefer,
    ...(threads !== undefined ? { threads } : {}),
    onFallback: (err) => {
      fallbackReason = err instanceof Error ? err.message : String(err);
    },
  });
  const info = { kernels: kernels.name, threads: kernels.threads };
  return { kernels, info: fallbackReason ? { ...info, fallbackReason } : info };
}
