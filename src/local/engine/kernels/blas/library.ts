import { existsSync } from "node:fs";
import { basename } from "node:path";

/**
 * Finding and loading a system BLAS through koffi (an optional dependency: an FFI whose npm
 * package ships prebuilt binaries). Nothing here throws: every failure becomes a reason string, so
 * the engine can fall back to the wasm kernels and say why.
 */

/** `cblas_sgemm` with CblasRowMajor; float arguments are views of the wasm heap (no copies). */
export type Sgemm = (
  order: number,
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

export const CBLAS_ROW_MAJOR = 101;
export const CBLAS_NO_TRANS = 111;
export const CBLAS_TRANS = 112;

/** A loaded BLAS library. */
export interface BlasLibrary {
  /** e.g. "OpenBLAS 0.3.21", "Accelerate", "BLIS". */
  readonly name: string;
  /** What was loaded: a file name resolved by the dynamic loader, or a path. */
  readonly path: string;
  readonly sgemm: Sgemm;
}

/** The subset of koffi's API used here. */
interface KoffiLibrary {
  func(declaration: string): (...args: never[]) => unknown;
}
export interface KoffiModule {
  load(path: string): KoffiLibrary;
}

/** `TINKER_TS_BLAS`: "off", "auto" (default) or a library path. */
export type BlasSetting = "off" | "auto" | (string & {});

/** The setting from `TINKER_TS_BLAS` (empty or unset: "auto"). */
export function blasSettingFromEnv(env: NodeJS.ProcessEnv = process.env): BlasSetting {
  const v = env.TINKER_TS_BLAS?.trim();
  if (!v) return "auto";
  const lower = v.toLowerCase();
  return lower === "off" || lower === "auto" ? lower : v;
}

/** Libraries tried by "auto", in order, per platform. */
export function blasCandidates(platform: NodeJS.Platform = process.platform): string[] {
  switch (platform) {
    case "darwin":
      return [
        "/System/Library/Frameworks/Accelerate.framework/Accelerate",
        "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
        "/usr/local/opt/openblas/lib/libopenblas.dylib",
      ];
    case "win32":
      return ["libopenblas.dll", "openblas.dll"];
    default:
      // libblas.so.3 is Debian's alternatives link (OpenBLAS, BLIS, MKL or the reference BLAS).
      return ["libopenblas.so.0", "libopenblas.so", "libblas.so.3", "libcblas.so.3"];
  }
}

/** How to get a BLAS on this platform, for the one-line notice. */
export function blasInstallHint(platform: NodeJS.Platform = process.platform): string {
  if (platform === "darwin") {
    return "Accelerate ships with macOS; or set TINKER_TS_BLAS=/path/to/libopenblas.dylib";
  }
  if (platform === "win32") return "put libopenblas.dll on PATH or set TINKER_TS_BLAS=<path>";
  return "apt install libopenblas0-pthread (Debian/Ubuntu), dnf install openblas (Fedora), or set TINKER_TS_BLAS=/path/to/libopenblas.so.0";
}

const KOFFI = "koffi";

/** Imports koffi (not a static import: the package is optional and never bundled). */
export async function importKoffi(): Promise<KoffiModule> {
  const mod = (await import(KOFFI)) as { default?: KoffiModule } & KoffiModule;
  return mod.default ?? mod;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}

function optionalFunc<T>(lib: KoffiLibrary, declaration: string): T | undefined {
  try {
    return lib.func(declaration) as T;
  } catch {
    return undefined;
  }
}

/**
 * Identifies the implementation by the symbols it exports, and makes it run on the calling thread
 * only (see `loadSingleThreaded`).
 */
function describe(lib: KoffiLibrary): { name: string; optimized: boolean } {
  const openblasConfig = optionalFunc<() => string>(lib, "const char *openblas_get_config()");
  if (openblasConfig) {
    optionalFunc<(n: number) => void>(lib, "void openblas_set_num_threads(int)")?.(1);
    const version = /OpenBLAS\s+(\S+)/.exec(String(openblasConfig()))?.[1];
    return { name: version ? `OpenBLAS ${version}` : "OpenBLAS", optimized: true };
  }
  const blis = optionalFunc<(n: number) => void>(lib, "void bli_thread_set_num_threads(int64_t)");
  if (blis) {
    blis(1);
    return { name: "BLIS", optimized: true };
  }
  const mkl = optionalFunc<(n: number) => void>(lib, "void MKL_Set_Num_Threads(int)");
  if (mkl) {
    mkl(1);
    return { name: "MKL", optimized: true };
  }
  return { name: "BLAS", optimized: false };
}

/**
 * A 2x2 product with transposes and a leading dimension, exact in float32: catches a library
 * whose `cblas_sgemm` is not the standard one (e.g. 64-bit integer interface) before it is used.
 */
function selfCheck(sgemm: Sgemm): string | undefined {
  const a = Float32Array.from([1, 2, 0, 3, 4, 0]); // A^T stored 2x3 (lda 3): A = [[1, 3], [2, 4]]
  const b = Float32Array.from([5, 6, 7, 8]); // B^T stored: B = [[5, 7], [6, 8]]
  const c = Float32Array.from([1, 1, 1, 1]);
  sgemm(CBLAS_ROW_MAJOR, CBLAS_TRANS, CBLAS_TRANS, 2, 2, 2, 2, a, 3, b, 2, 1, c, 2);
  const want = [47, 63, 69, 93]; // 2 * A B + 1
  return c.every((v, i) => v === want[i]) ? undefined : `cblas_sgemm returned [${[...c]}]`;
}

/**
 * Loads a library with OPENBLAS_NUM_THREADS=1 in the C environment (a worker thread's process.env
 * is only a copy), restoring the variable right after: OpenBLAS reads it once, when it loads.
 *
 * Why single-threaded: OpenBLAS's pthread build shuts its worker threads down in a fork handler,
 * and that join can hang forever (seen here with OpenBLAS 0.3.21: Node's child_process.spawn on
 * the main thread stuck in blas_thread_shutdown_ while the engine worker used the BLAS). With one
 * thread there are no BLAS threads to join. The calling thread's product is then one core's work;
 * the wasm pool's threads sleep meanwhile, so nothing is oversubscribed.
 */
function loadSingleThreaded(koffi: KoffiModule, path: string): KoffiLibrary {
  const env = process.platform === "win32" ? undefined : cEnvironment(koffi);
  const before = env?.get("OPENBLAS_NUM_THREADS");
  env?.set("OPENBLAS_NUM_THREADS", "1");
  try {
    return koffi.load(path);
  } finally {
    if (before === undefined || before === null) env?.unset("OPENBLAS_NUM_THREADS");
    else env?.set("OPENBLAS_NUM_THREADS", before);
  }
}

interface CEnvironment {
  get(name: string): string | null;
  set(name: string, value: string): void;
  unset(name: string): void;
}

function cEnvironment(koffi: KoffiModule): CEnvironment | undefined {
  for (const libc of ["libc.so.6", "libc.so", "libSystem.B.dylib"]) {
    try {
      const lib = koffi.load(libc);
      const getenv = lib.func("const char *getenv(const char *name)") as (
        n: string,
      ) => string | null;
      const setenv = lib.func("int setenv(const char *name, const char *value, int overwrite)") as (
        n: string,
        v: string,
        o: number,
      ) => number;
      const unsetenv = lib.func("int unsetenv(const char *name)") as (n: string) => number;
      return {
        get: (n) => getenv(n),
        set: (n, v) => void setenv(n, v, 1),
        unset: (n) => void unsetenv(n),
      };
    } catch {
      // Not this C library.
    }
  }
  return undefined;
}

export type LoadResult = { ok: true; library: BlasLibrary } | { ok: false; reason: string };

/**
 * Loads a BLAS. With "auto" the platform's candidates are tried in order and a library that is
 * only the unoptimised reference BLAS is passed over (it is slower than the wasm kernels); a path
 * is used whatever it is, once its `cblas_sgemm` passes the self-check.
 */
export async function loadBlas(
  setting: Exclude<BlasSetting, "off">,
  load: () => Promise<KoffiModule> = importKoffi,
): Promise<LoadResult> {
  let koffi: KoffiModule;
  try {
    koffi = await load();
  } catch (err) {
    return {
      ok: false,
      reason: `the optional dependency koffi is not installed or does not load (${message(err)})`,
    };
  }
  const explicit = setting !== "auto";
  if (explicit && (setting.includes("/") || setting.includes("\\")) && !existsSync(setting)) {
    return { ok: false, reason: `TINKER_TS_BLAS=${setting}: no such file` };
  }
  const reasons: string[] = [];
  for (const path of explicit ? [setting] : blasCandidates()) {
    let lib: KoffiLibrary;
    try {
      lib = loadSingleThreaded(koffi, path);
    } catch (err) {
      reasons.push(`${basename(path)}: ${message(err)}`);
      continue;
    }
    const sgemm = optionalFunc<Sgemm>(
      lib,
      "void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)",
    );
    if (!sgemm) {
      reasons.push(`${basename(path)} has no cblas_sgemm`);
      continue;
    }
    const info = describe(lib);
    const name = path.includes("Accelerate.framework") ? "Accelerate" : info.name;
    if (!explicit && !info.optimized && name !== "Accelerate") {
      reasons.push(`${basename(path)} is the reference BLAS (slower than the wasm kernels)`);
      continue;
    }
    const failed = selfCheck(sgemm);
    if (failed) {
      reasons.push(`${basename(path)}: self-check failed, ${failed}`);
      continue;
    }
    return { ok: true, library: { name, path, sgemm } };
  }
  const prefix = explicit ? `TINKER_TS_BLAS=${setting}: ` : "no system BLAS found: ";
  return { ok: false, reason: prefix + reasons.join("; ") };
}
