import { BlasKernels } from "./blas/kernels.js";
import { type BlasSetting, blasInstallHint, blasSettingFromEnv } from "./blas/library.js";
import { createJsKernels } from "./js.js";
import type { Kernels } from "./types.js";
import type { WasmKernels } from "./wasm/kernels.js";

export type { BlasSetting } from "./blas/library.js";
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
  /** Threads for the wasm kernels (default: the machine's cores, at most 8); the BLAS uses as many. */
  threads?: number;
  /**
   * Large matrix products through a system BLAS (wasm kernels only): "auto" finds one, "off" never
   * does, a path loads that library. Default: `TINKER_TS_BLAS`, else "auto".
   */
  blas?: BlasSetting;
  /** Called with the reason when the wasm kernels were wanted but could not be used. */
  onFallback?: (reason: unknown) => void;
  /** Called with the reason when no BLAS serves (including "TINKER_TS_BLAS=off"). */
  onNoBlas?: (reason: string) => void;
}

/**
 * Create the compute kernels. With `prefer: "wasm"` (the default) this loads the WebAssembly SIMD
 * kernels, hands their large products to a system BLAS when one is found (see `blas`), and falls
 * back to the pure-TypeScript kernels when the module is absent or fails to start.
 */
export async function createKernels(opts: CreateKernelsOptions = {}): Promise<Kernels> {
  if ((opts.prefer ?? "wasm") === "js") return createJsKernels();
  let wasm: WasmKernels;
  try {
    const { createWasmKernelsSync } = await import("./wasm/index.js");
    wasm = createWasmKernelsSync(opts.threads === undefined ? {} : { threads: opts.threads });
  } catch (err) {
    opts.onFallback?.(err);
    return createJsKernels();
  }
  const { withBlas } = await import("./blas/index.js");
  const r = await withBlas(wasm, opts.blas ?? blasSettingFromEnv());
  if (r.ok) return r.kernels;
  opts.onNoBlas?.(r.reason);
  return wasm;
}

/** Which kernels run the math, and why the wasm ones (or a BLAS) were not used. */
export interface KernelsInfo {
  kernels: string;
  threads: number;
  fallbackReason?: string;
  /** The BLAS that runs the large matrix products, if any. */
  blas?: { library: string; path: string; threads: number };
  /** Why no BLAS runs them (wasm kernels only). */
  noBlasReason?: string;
  /** One line for the user: which backend runs, and how to get the faster one. */
  notice: string;
}

/** {@link createKernels} for an engine: the kernels and the {@link KernelsInfo} it reports. */
export async function createEngineKernels(
  prefer: KernelsChoice,
  threads: number | undefined,
  blas: BlasSetting = blasSettingFromEnv(),
): Promise<{ kernels: Kernels; info: KernelsInfo }> {
  let fallbackReason: string | undefined;
  let noBlasReason: string | undefined;
  const kernels = await createKernels({
    prefer,
    blas,
    ...(threads !== undefined ? { threads } : {}),
    onFallback: (err) => {
      fallbackReason = err instanceof Error ? err.message : String(err);
    },
    onNoBlas: (reason) => {
      noBlasReason = reason;
    },
  });
  const info: KernelsInfo = { kernels: kernels.name, threads: kernels.threads, notice: "" };
  if (fallbackReason) info.fallbackReason = fallbackReason;
  if (noBlasReason) info.noBlasReason = noBlasReason;
  if (kernels instanceof BlasKernels) {
    const { name, path } = kernels.library;
    info.blas = { library: name, path, threads: kernels.blasThreads };
  }
  info.notice = kernelsNotice(info);
  return { kernels, info };
}

/** The line that says which backend runs and, when it is not the fastest, how to get it. */
export function kernelsNotice(info: Omit<KernelsInfo, "notice">): string {
  const on = `on ${info.threads} thread${info.threads === 1 ? "" : "s"}`;
  if (info.blas) {
    return `tinker-ts engine: matrix products through ${info.blas.library} (${info.blas.path}, ${info.blas.threads} thread${info.blas.threads === 1 ? "" : "s"}), other kernels ${info.kernels.replace(/\+blas$/, "")} ${on}; TINKER_TS_BLAS=off runs wasm only`;
  }
  if (info.kernels === "js") {
    const why = info.fallbackReason ? ` (wasm kernels unavailable: ${info.fallbackReason})` : "";
    return `tinker-ts engine: pure-TypeScript kernels${why}`;
  }
  const why = info.noBlasReason ?? "no BLAS";
  if (why === "TINKER_TS_BLAS=off") {
    return `tinker-ts engine: ${info.kernels} kernels ${on} (TINKER_TS_BLAS=off)`;
  }
  return `tinker-ts engine: ${info.kernels} kernels ${on}, no BLAS (${why}); for faster training: ${blasInstallHint()}`;
}
