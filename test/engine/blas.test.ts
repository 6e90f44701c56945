import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../src/client/types/datum.js";
import { createLocalEngine } from "../../src/local/engine/index.js";
import { getPreset } from "../../src/local/engine/io/presets.js";
import {
  BlasKernels,
  type BlasLibrary,
  importKoffi,
  loadBlas,
  withBlas,
} from "../../src/local/engine/kernels/blas/index.js";
import { createEngineKernels } from "../../src/local/engine/kernels/index.js";
import type { GemmParams, Kernels } from "../../src/local/engine/kernels/types.js";
import { createWasmKernelsSync } from "../../src/local/engine/kernels/wasm/index.js";
import type { WasmKernels } from "../../src/local/engine/kernels/wasm/kernels.js";
import { type SampleRequest, sampleBatch } from "../../src/local/engine/sampling/sampler.js";
import { forwardBackward } from "../../src/local/engine/train/forward-backward.js";
import { ceData, engineData, makeAdapter, makeModel } from "./fixtures.js";

/*
 * The BLAS path (cblas_sgemm through koffi on views of the wasm heap) against the wasm kernels.
 * Both accumulate in float32 in different orders, so they agree to float32 rounding: per element,
 * within a few sqrt(k) ulps of sum_k |a||b| around the float64 product.
 *
 * Without a system BLAS (or koffi), the tests that need one are skipped and one line says the run
 * covered the wasm fallback only; TINKER_TS_REQUIRE_BLAS=1 (set by .ci/run once it has installed
 * OpenBLAS) turns that into a failure.
 */
const probe = await loadBlas("auto");
const library: BlasLibrary | undefined = probe.ok ? probe.library : undefined;
const noBlas = probe.ok ? "" : probe.reason;

describe("BLAS availability", () => {
  it("reports which backend these tests ran against", () => {
    if (library) console.info(`blas tests: ${library.name} (${library.path})`);
    else console.warn(`blas tests ran against the wasm fallback only: ${noBlas}`);
    if (process.env.TINKER_TS_REQUIRE_BLAS === "1") expect(noBlas).toBe("");
  });
});

const EPS = 2 ** -24;

function fill(buf: Float32Array, seed: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < buf.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    buf[i] = s / 2 ** 32 - 0.5;
  }
}

interface Case extends Omit<GemmParams, "a" | "b" | "c"> {
  label: string;
}

/** Stored element counts of A, B, C for a case (with leading dimensions and batch strides). */
function sizes(g: Case): { a: number; b: number; c: number; sA: number; sB: number; sC: number } {
  const aRows = g.transA ? g.k : g.m;
  const aCols = g.transA ? g.m : g.k;
  const bRows = g.transB ? g.n : g.k;
  const bCols = g.transB ? g.k : g.n;
  const lda = g.lda ?? aCols;
  const ldb = g.ldb ?? bCols;
  const ldc = g.ldc ?? g.n;
  const sA = g.strideA ?? aRows * lda;
  const sB = g.strideB ?? bRows * ldb;
  const sC = g.strideC ?? g.m * ldc;
  const batch = g.batch ?? 1;
  return { a: batch * sA, b: batch * sB, c: batch * sC, sA, sB, sC };
}

/**
 * C = alpha op(A) op(B) + beta C in float64, and per element of the product the bound
 * sum |alpha a b| + |beta c| (-1 outside the product).
 */
function reference(
  g: Case,
  a: Float32Array,
  b: Float32Array,
  c0: Float32Array,
): { ref: Float64Array; mag: Float64Array } {
  const s = sizes(g);
  const aCols = g.transA ? g.m : g.k;
  const bCols = g.transB ? g.k : g.n;
  const lda = g.lda ?? aCols;
  const ldb = g.ldb ?? bCols;
  const ldc = g.ldc ?? g.n;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  // Elements outside the product (leading-dimension and batch gaps) must keep their value.
  const ref = Float64Array.from(c0);
  const mag = new Float64Array(c0.length).fill(-1);
  for (let t = 0; t < (g.batch ?? 1); t++) {
    for (let i = 0; i < g.m; i++) {
      for (let j = 0; j < g.n; j++) {
        let sum = 0;
        let abs = 0;
        for (let p = 0; p < g.k; p++) {
          const x = a[t * s.sA + (g.transA ? p * lda + i : i * lda + p)]!;
          const y = b[t * s.sB + (g.transB ? j * ldb + p : p * ldb + j)]!;
          sum += x * y;
          abs += Math.abs(x * y);
        }
        const at = t * s.sC + i * ldc + j;
        ref[at] = alpha * sum + (beta === 0 ? 0 : beta * c0[at]!);
        mag[at] = Math.abs(alpha) * abs + Math.abs(beta * c0[at]!);
      }
    }
  }
  return { ref, mag };
}

/** Runs `g` on kernels `K` (fresh buffers from its heap, same data) and returns C. */
function run(
  K: Kernels,
  g: Case,
  seed: number,
): { a: Float32Array; b: Float32Array; c0: Float32Array; c: Float32Array } {
  const s = sizes(g);
  const a = K.alloc(s.a);
  const b = K.alloc(s.b);
  const c = K.alloc(s.c);
  fill(a, seed);
  fill(b, seed + 1);
  fill(c, seed + 2);
  const c0 = c.slice();
  const { label: _, ...params } = g;
  K.gemm({ ...params, a, b, c });
  const out = { a: a.slice(), b: b.slice(), c0, c: c.slice() };
  K.free(a);
  K.free(b);
  K.free(c);
  return out;
}

// The products the engine runs (Transformer.linear / linearBackward / loraIn / loraInBackward /
// logits), at widths that make each one large enough for the BLAS, plus transposes and batches.
const CASES: Case[] = [
  { label: "x W^T (linear)", transA: false, transB: true, m: 96, n: 320, k: 256 },
  { label: "x W^T accumulate", transA: false, transB: true, m: 64, n: 256, k: 384, beta: 1 },
  { label: "dy W (dx)", transA: false, transB: false, m: 96, n: 256, k: 320 },
  { label: "dy W accumulate", transA: false, transB: false, m: 80, n: 256, k: 320, beta: 1 },
  {
    label: "LoRA h slot B^T (lda, alpha, beta)",
    transA: false,
    transB: true,
    m: 512,
    n: 384,
    k: 8,
    lda: 24,
    alpha: 2.5,
    beta: 1,
  },
  { label: "dy B into g (ldc)", transA: false, transB: false, m: 512, n: 8, k: 384, ldc: 24 },
  {
    label: "dB += s dy^T h (ldb)",
    transA: true,
    transB: false,
    m: 384,
    n: 8,
    k: 512,
    ldb: 24,
    alpha: 0.5,
    beta: 1,
  },
  {
    label: "dA += s g^T x",
    transA: true,
    transB: false,
    m: 24,
    n: 256,
    k: 512,
    alpha: 0.5,
    beta: 1,
  },
  { label: "TT", transA: true, transB: true, m: 70, n: 90, k: 300 },
  { label: "lm_head block", transA: false, transB: true, m: 33, n: 1000, k: 256, ldc: 1003 },
  {
    label: "batched NT with strides",
    transA: false,
    transB: true,
    m: 64,
    n: 64,
    k: 64,
    batch: 3,
    strideA: 64 * 64 + 5,
    strideB: 64 * 64 + 7,
    strideC: 64 * 64 + 3,
  },
];

describe.skipIf(!library)("cblas_sgemm on views of the wasm heap vs the wasm kernel", () => {
  let wasm: WasmKernels;
  let blas: BlasKernels;
  let calls = 0;
  beforeAll(() => {
    wasm = createWasmKernelsSync({ threads: 2 });
    const lib = library!;
    const counted: BlasLibrary = {
      ...lib,
      sgemm: (...args) => {
        calls++;
        lib.sgemm(...args);
      },
    };
    blas = new BlasKernels(createWasmKernelsSync({ threads: 2 }), counted, { minMacs: 0 });
  });
  afterAll(() => {
    wasm?.dispose();
    blas?.dispose();
  });

  it.each(CASES.map((g) => [g.label, g] as const))(
    "%s: both equal the float64 product to float32 rounding",
    (_l, g) => {
      const before = calls;
      const w = run(wasm, g, 11);
      const x = run(blas, g, 11);
      expect(calls - before).toBe(g.batch ?? 1);
      expect(x.a).toEqual(w.a);
      const { ref, mag } = reference(g, w.a, w.b, w.c0);
      const tol = 8 * Math.sqrt(g.k) * EPS;
      let worst = 0;
      for (let i = 0; i < ref.length; i++) {
        if (mag[i]! < 0) {
          expect(x.c[i]).toBe(w.c0[i]);
          continue;
        }
        const bound = tol * mag[i]! + EPS * Math.abs(ref[i]!) + 1e-30;
        const err = Math.max(Math.abs(x.c[i]! - ref[i]!), Math.abs(w.c[i]! - ref[i]!));
        worst = Math.max(worst, err / bound);
      }
      expect(worst).toBeLessThanOrEqual(1);
    },
  );

  it("row-invariant products, small ones and k = 0 stay on the wasm kernel (bit for bit)", () => {
    const small = new BlasKernels(createWasmKernelsSync({ threads: 2 }), {
      ...library!,
      sgemm: (...args) => {
        calls++;
        library!.sgemm(...args);
      },
    });
    try {
      const cases: Array<[BlasKernels, Case]> = [
        [
          blas,
          {
            label: "decode",
            transA: false,
            transB: true,
            m: 5,
            n: 700,
            k: 256,
            rowInvariant: true,
          },
        ],
        [small, { label: "small", transA: false, transB: true, m: 4, n: 64, k: 64 }],
        [blas, { label: "k0", transA: false, transB: false, m: 8, n: 8, k: 0, lda: 1, beta: 1 }],
      ];
      for (const [K, g] of cases) {
        const before = calls;
        expect(run(K, g, 5).c, g.label).toEqual(run(wasm, g, 5).c);
        expect(calls - before, g.label).toBe(0);
      }
    } finally {
      small.dispose();
    }
  });

  it("views made before the heap grows still work, and the BLAS writes the heap in place", () => {
    const m = 64;
    const a = blas.alloc(m * m);
    const b = blas.alloc(m * m);
    const c = blas.alloc(m * m);
    fill(a, 1);
    fill(b, 2);
    const before = blas.memoryStats().memoryBytes;
    const big = blas.alloc(16 << 20); // 64 MiB: the shared memory grows, buffer objects change
    expect(blas.memoryStats().memoryBytes).toBeGreaterThan(before);
    expect(c.buffer).not.toBe(big.buffer);
    blas.gemm({ transA: false, transB: false, m, n: m, k: m, a, b, c });
    const { ref, mag } = reference(
      { label: "", transA: false, transB: false, m, n: m, k: m },
      a,
      b,
      c,
    );
    for (let i = 0; i < ref.length; i++) {
      expect(Math.abs(c[i]! - ref[i]!)).toBeLessThanOrEqual(8 * 8 * EPS * mag[i]! + 1e-30);
    }
    for (const x of [a, b, c, big]) blas.free(x);
  });

  it.skipIf(process.platform !== "linux")(
    "koffi passes heap views as pointers into the heap (no copies)",
    async () => {
      const koffi = (await importKoffi()) as unknown as {
        load(p: string): { func(d: string): (...a: unknown[]) => unknown };
        address(p: unknown): bigint;
      };
      const memmove = koffi
        .load("libc.so.6")
        .func("void *memmove(void *dst, const void *src, size_t n)");
      const heap = blas.alloc(64);
      fill(heap, 9);
      const want = heap.slice(0, 16);
      const dst = heap.subarray(32, 48);
      const dst2 = heap.subarray(40, 56);
      const p1 = koffi.address(memmove(dst, heap.subarray(0, 16), 64));
      koffi.address(memmove(dst2, heap.subarray(0, 16), 64));
      const p2 = koffi.address(memmove(dst2, heap.subarray(0, 16), 64));
      expect(p2 - p1).toBe(32n); // 8 floats apart: the native side sees the heap's own addresses
      expect(heap.subarray(40, 56)).toEqual(want);
      blas.free(heap);
    },
  );

  it("OpenBLAS loads single-threaded, the C environment is restored, and a fork after BLAS work returns", async () => {
    const K = new BlasKernels(createWasmKernelsSync({ threads: 2 }), library!, { minMacs: 0 });
    try {
      expect(K.blasThreads).toBe(1);
      run(K, { label: "", transA: false, transB: true, m: 64, n: 64, k: 64 }, 3);
      if (library!.name.startsWith("OpenBLAS")) {
        const koffi = (await importKoffi()) as unknown as {
          load(p: string): { func(d: string): (...a: unknown[]) => unknown };
        };
        const lib = koffi.load(library!.path);
        // What OpenBLAS read when it loaded, and what it runs with.
        expect(lib.func("int openblas_num_threads_env()")()).toBe(1);
        expect(lib.func("int openblas_get_num_threads()")()).toBe(1);
        if (process.platform === "linux") {
          const getenv = koffi.load("libc.so.6").func("const char *getenv(const char *name)");
          expect(getenv("OPENBLAS_NUM_THREADS") ?? undefined).toBe(
            process.env.OPENBLAS_NUM_THREADS,
          );
        }
      }
      // OpenBLAS's threads are joined in a fork handler, which could hang; there are none.
      for (let i = 0; i < 3; i++) {
        run(K, { label: "", transA: false, transB: false, m: 96, n: 96, k: 96 }, i);
        expect(spawnSync(process.execPath, ["-e", ""], { timeout: 20_000 }).status).toBe(0);
      }
    } finally {
      K.dispose();
    }
  });
});

describe.skipIf(!library)("tiny-bytes forward/backward and sampling on the BLAS backend", () => {
  const config = getPreset("tiny-bytes").config;
  let wasm: Kernels;
  let blasAll: Kernels;
  let blasDefault: Kernels;
  beforeAll(async () => {
    wasm = createWasmKernelsSync({ threads: 2 });
    const all = await withBlas(createWasmKernelsSync({ threads: 2 }), "auto", { minMacs: 0 });
    const dflt = await withBlas(createWasmKernelsSync({ threads: 2 }), "auto");
    if (!all.ok || !dflt.ok) throw new Error("BLAS went away");
    blasAll = all.kernels;
    blasDefault = dflt.kernels;
  });
  afterAll(() => {
    for (const K of [wasm, blasAll, blasDefault]) K?.dispose();
  });

  it.each([
    ["every product on the BLAS", () => blasAll],
    ["the default routing", () => blasDefault],
  ])("losses, logprobs and LoRA gradients equal the wasm path (%s)", (_n, kernels) => {
    const data = engineData(ceData(config.vocabSize, [90, 40, 130]));
    const outs = [wasm, kernels()].map((K) => {
      const model = makeModel(config, 1, 0.1, K);
      const adapter = makeAdapter(model, {
        rank: 8,
        seed: 7,
        trainAttn: true,
        trainMlp: true,
        trainUnembed: true,
      });
      const out = forwardBackward(model, adapter, data, "cross_entropy", undefined, false, 1024);
      return { out, grads: adapter.grads.slice() };
    });
    const [w, b] = outs as [(typeof outs)[0], (typeof outs)[0]];
    const lw = w.out.metrics["loss:sum"]!;
    const lb = b.out.metrics["loss:sum"]!;
    expect(Math.abs(lb - lw) / Math.abs(lw)).toBeLessThan(1e-5);
    for (let i = 0; i < data.length; i++) {
      const x = w.out.lossFnOutputs[i]!.logprobs!.data;
      const y = b.out.lossFnOutputs[i]!.logprobs!.data;
      for (let j = 0; j < x.length; j++)
        expect(Math.abs(x[j]! - y[j]!)).toBeLessThan(1e-5 * (1 + Math.abs(x[j]!)));
    }
    let num = 0;
    let den = 0;
    for (let i = 0; i < w.grads.length; i++) {
      num += (w.grads[i]! - b.grads[i]!) ** 2;
      den += w.grads[i]! ** 2;
    }
    expect(den).toBeGreaterThan(0);
    expect(Math.sqrt(num / den)).toBeLessThan(1e-5);
  });

  it("a sample's tokens do not depend on its batch, and its logprobs equal a forward pass", () => {
    const model = makeModel(config, 4, 0.15, blasAll);
    const adapter = makeAdapter(model);
    const mk = (prompt: number[], numSamples: number, seed: number): SampleRequest => ({
      prompt: Int32Array.from(prompt),
      numSamples,
      params: { maxTokens: 12, seed, temperature: 1.1, topK: 40 },
      promptLogprobs: false,
      topkPromptLogprobs: 0,
      maxContextLength: 256,
    });
    const a = mk([72, 101, 108, 108, 111, 32, 119], 1, 7);
    const b = mk([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 50, 60, 70], 3, 8);
    const alone = sampleBatch(model, adapter, [a])[0];
    const together = sampleBatch(model, adapter, [b, a])[1];
    if (alone instanceof Error || together instanceof Error || !alone || !together)
      throw new Error("sampling failed");
    expect(together.sequences).toEqual(alone.sequences);
    const s = alone.sequences[0]!;
    const seq = [...a.prompt, ...s.tokens];
    const data = engineData([
      makeDatum(seq.slice(0, -1), {
        target_tokens: seq.slice(1),
        weights: seq.slice(1).map(() => 1),
      }),
    ]);
    const lp = forwardBackward(model, adapter, data, "cross_entropy", undefined, true, 1024)
      .lossFnOutputs[0]!.logprobs!.data;
    for (let i = 0; i < s.tokens.length; i++) {
      expect(Math.abs(s.logprobs![i]! - lp[a.prompt.length - 1 + i]!)).toBeLessThan(1e-4);
    }
  });
});

describe("without a BLAS the wasm kernels serve, and one line says so", () => {
  it("TINKER_TS_BLAS=off never loads one", async () => {
    const { kernels, info } = await createEngineKernels("wasm", 1, "off");
    try {
      expect(kernels.name).toMatch(/^wasm-(relaxed-)?simd$/);
      expect(info.blas).toBeUndefined();
      expect(info.noBlasReason).toBe("TINKER_TS_BLAS=off");
      expect(info.notice).toContain("TINKER_TS_BLAS=off");
    } finally {
      kernels.dispose();
    }
  });

  it("a library path that does not exist, or has no cblas_sgemm, falls back with the reason and the fix", async () => {
    const paths = [
      "/nonexistent/libopenblas.so.0",
      ...(process.platform === "linux" ? ["libc.so.6"] : []),
    ];
    for (const path of paths) {
      const { kernels, info } = await createEngineKernels("wasm", 1, path);
      try {
        expect(kernels.name).not.toContain("blas");
        expect(info.noBlasReason).toContain(`TINKER_TS_BLAS=${path}`);
        expect(info.notice).toContain("no BLAS");
        expect(info.notice).toMatch(/libopenblas|Accelerate/);
        expect(info.notice.split("\n")).toHaveLength(1);
      } finally {
        kernels.dispose();
      }
    }
  });

  it("an empty blas option is a validation error naming the field", async () => {
    await expect(
      createLocalEngine({ inProcess: true, presets: false, blas: " " }),
    ).rejects.toMatchObject({
      name: "TinkerValidationError",
      field: "blas",
    });
  });

  it("koffi missing or failing to load is a reason, not a crash", async () => {
    const r = await withBlas(createWasmKernelsSync({ threads: 1 }), "auto", {
      importKoffi: () => Promise.reject(new Error("Cannot find package 'koffi'")),
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain("koffi");
  });

  it("the engine logs its backend line once per process through its logger", async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m) };
    const opts = {
      inProcess: true,
      presets: false,
      threads: 1,
      blas: "/nonexistent/libblas.so",
      logger,
    } as const;
    const e1 = await createLocalEngine(opts);
    const e2 = await createLocalEngine(opts);
    try {
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe((await e1.kernelsInfo()).notice);
      expect(lines[0]).toContain("no BLAS");
    } finally {
      await e1.close();
      await e2.close();
    }
  });

  it.skipIf(!library)("with a BLAS the engine worker reports it", async () => {
    const lines: string[] = [];
    const engine = await createLocalEngine({
      presets: false,
      threads: 2,
      blas: "auto",
      logger: { info: (m) => lines.push(m) },
    });
    try {
      const info = await engine.kernelsInfo();
      expect(info.kernels).toMatch(/\+blas$/);
      expect(info.blas?.threads).toBe(1);
      expect(info.threads).toBe(2);
      expect(info.blas?.library).toBe(library!.name);
    } finally {
      await engine.close();
    }
  });
});
