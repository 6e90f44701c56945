import v8 from "node:v8";
import { TinkerValidationError } from "../../../../client/errors.js";
import { kernelsRelaxedSimdBase64, kernelsSimdBase64 } from "./generated/wasm-binaries.js";
import { type WasmModule, wasmApi } from "./wasm-api.js";

/** Which build of the kernel module to run. */
export type WasmKernelVariant = "wasm-simd" | "wasm-relaxed-simd";

const modules = new Map<WasmKernelVariant, WasmModule>();

function bytesOf(variant: WasmKernelVariant): Uint8Array {
  const b64 = variant === "wasm-simd" ? kernelsSimdBase64 : kernelsRelaxedSimdBase64;
  return new Uint8Array(Buffer.from(b64, "base64"));
}

let relaxedSupport: boolean | undefined;

/**
 * Whether this runtime validates the relaxed-SIMD build. Node 20's V8 needs
 * `--experimental-wasm-relaxed-simd`, which is set here (process-wide, before compiling) if plain
 * validation fails; newer Node versions validate it without the flag.
 */
export function relaxedSimdSupported(): boolean {
  if (relaxedSupport !== undefined) return relaxedSupport;
  const bytes = bytesOf("wasm-relaxed-simd");
  let ok = wasmApi.validate(bytes);
  if (!ok) {
    try {
      v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
      ok = wasmApi.validate(bytes);
    } catch {
      ok = false;
    }
  }
  relaxedSupport = ok;
  return ok;
}

/**
 * Chooses the build: `true` requires relaxed SIMD (error if unsupported), `false` forces plain SIMD,
 * `undefined` takes relaxed SIMD when the runtime validates it.
 */
export function chooseVariant(relaxedSimd: boolean | undefined): WasmKernelVariant {
  if (relaxedSimd === false) return "wasm-simd";
  const ok = relaxedSimdSupported();
  if (relaxedSimd === true && !ok) {
    throw new TinkerValidationError(
      "relaxedSimd: this JavaScript runtime does not validate WebAssembly relaxed SIMD; pass relaxedSimd: false or omit it",
      "relaxedSimd",
    );
  }
  return ok ? "wasm-relaxed-simd" : "wasm-simd";
}

/** The compiled module of a build (compiled once per process, synchronously). */
export function compiledModule(variant: WasmKernelVariant): WasmModule {
  let mod = modules.get(variant);
  if (!mod) {
    if (variant === "wasm-relaxed-simd" && !relaxedSimdSupported()) {
      throw new TinkerValidationError("relaxedSimd: not supported by this runtime", "relaxedSimd");
    }
    const bytes = bytesOf(variant);
    if (!wasmApi.validate(bytes)) {
      throw new TinkerValidationError(
        `${variant}: this JavaScript runtime does not validate WebAssembly SIMD; use the js kernels`,
        "kernels",
      );
    }
    mod = new wasmApi.Module(bytes);
    modules.set(variant, mod);
  }
  return mod;
}
