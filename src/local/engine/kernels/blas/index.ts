import type { WasmKernels } from "../wasm/kernels.js";
import { BlasKernels, type BlasKernelsOptions } from "./kernels.js";
import { type BlasSetting, type KoffiModule, type LoadResult, loadBlas } from "./library.js";

export { BLAS_MIN_MACS, BlasKernels, type BlasKernelsOptions } from "./kernels.js";
export {
  type BlasLibrary,
  type BlasSetting,
  blasCandidates,
  blasInstallHint,
  blasSettingFromEnv,
  importKoffi,
  type KoffiModule,
  loadBlas,
} from "./library.js";

// One load per setting per thread (each engine worker has its own module instance).
const loaded = new Map<string, Promise<LoadResult>>();

/**
 * The wasm kernels with a BLAS for large products, or the reason there is none (then the caller
 * keeps `wasm` as it is). `setting` "off" never touches koffi.
 */
export async function withBlas(
  wasm: WasmKernels,
  setting: BlasSetting,
  opts: BlasKernelsOptions & { importKoffi?: () => Promise<KoffiModule> } = {},
): Promise<{ ok: true; kernels: BlasKernels } | { ok: false; reason: string }> {
  if (setting === "off") return { ok: false, reason: "TINKER_TS_BLAS=off" };
  let result: Promise<LoadResult>;
  if (opts.importKoffi) result = loadBlas(setting, opts.importKoffi);
  else {
    result = loaded.get(setting) ?? loadBlas(setting);
    loaded.set(setting, result);
  }
  const r = await result;
  if (!r.ok) return r;
  const { importKoffi: _, ...kernelOpts } = opts;
  return { ok: true, kernels: new BlasKernels(wasm, r.library, kernelOpts) };
}
