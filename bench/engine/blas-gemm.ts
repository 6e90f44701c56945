// GEMM throughput of the wasm kernels (1 and 2 threads) against the system BLAS as the engine runs
// it (cblas_sgemm through koffi on views of the same wasm heap, on the calling thread), on the
// products of a Qwen3-0.6B-shaped step at 512 tokens. Rounds interleave the two backends, so load from other processes hits both alike; the
// ratio is taken per round and its median reported. On a shared machine the numbers are
// indicative only.
//
//   npx tsx bench/engine/blas-gemm.ts        prints a table, writes bench/results/blas-gemm.json
//   BLAS_BENCH_QUICK=1 npx tsx ...           fewer rounds
//   TINKER_TS_BLAS=/path/to/lib npx tsx ...  another library
import {
  BlasKernels,
  blasSettingFromEnv,
  importKoffi,
  loadBlas,
} from "../../src/local/engine/kernels/blas/index.js";
import type { GemmParams, Kernels } from "../../src/local/engine/kernels/types.js";
import { createWasmKernelsSync } from "../../src/local/engine/kernels/wasm/index.js";
import { writeBenchResults } from "../write-results.js";

const quick = process.env.BLAS_BENCH_QUICK === "1";
const ROUNDS = quick ? 3 : 5;
const CALLS = quick ? 2 : 3;

interface Shape {
  name: string;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
}

// hidden 1024, ff 3072, vocabulary 151,936 in 8 blocks of 18,992 rows, 512 tokens.
const shapes: Shape[] = [
  { name: "NT 1024x1024x1024 (square)", transA: false, transB: true, m: 1024, n: 1024, k: 1024 },
  { name: "NT 512x3072x1024 (gate/up)", transA: false, transB: true, m: 512, n: 3072, k: 1024 },
  { name: "NT 512x1024x3072 (down)", transA: false, transB: true, m: 512, n: 1024, k: 3072 },
  {
    name: "NN 512x1024x3072 (dx of gate/up)",
    transA: false,
    transB: false,
    m: 512,
    n: 1024,
    k: 3072,
  },
  {
    name: "NT 512x18992x1024 (lm_head block)",
    transA: false,
    transB: true,
    m: 512,
    n: 18992,
    k: 1024,
  },
  {
    name: "NN 512x1024x18992 (lm_head dx)",
    transA: false,
    transB: false,
    m: 512,
    n: 1024,
    k: 18992,
  },
];

function fill(buf: Float32Array, seed: number): void {
  let s = seed;
  for (let i = 0; i < buf.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    buf[i] = s / 4294967296 - 0.5;
  }
}

function setup(K: Kernels, s: Shape): GemmParams {
  const a = K.alloc(s.m * s.k);
  const b = K.alloc(s.k * s.n);
  const c = K.alloc(s.m * s.n);
  fill(a, 1);
  fill(b, 2);
  return { transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a, b, c };
}

/** Median seconds of `CALLS` calls. */
function time(fn: () => void): number {
  const xs: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    fn();
    xs.push((performance.now() - t0) / 1000);
  }
  return xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

const loaded = await loadBlas(blasSettingFromEnv() === "off" ? "auto" : blasSettingFromEnv());
if (!loaded.ok) {
  console.error(`no BLAS to compare against: ${loaded.reason}`);
  process.exit(1);
}
const library = loaded.library;
console.log(`BLAS: ${library.name} (${library.path}); wasm and BLAS share one heap`);

// The engine runs the BLAS single-threaded (fork safety, see blas/library.ts); with "openblas 2"
// the bench also measures OpenBLAS's own two threads (openblas_set_num_threads(2)), what a split
// of products over the pool's threads could reach.
const koffi = (await importKoffi()) as unknown as {
  load(p: string): { func(d: string): (n: number) => void };
};
const setOpenblasThreads = library.name.startsWith("OpenBLAS")
  ? koffi.load(library.path).func("void openblas_set_num_threads(int)")
  : undefined;

interface Row {
  shape: string;
  /** Thread budget: wasm threads; the engine's BLAS path uses one of them. */
  threads: number;
  wasmGflops: number;
  blasGflops: number;
  /** Median over rounds of (BLAS GFLOP/s / wasm GFLOP/s) in the same round. */
  ratio: number;
  ratioWorst: number;
  /** OpenBLAS with `threads` threads of its own (not what the engine runs), and its ratio. */
  openblasGflops?: number;
  openblasRatio?: number;
}
const rows: Row[] = [];

for (const threads of [1, 2]) {
  const wasm = createWasmKernelsSync({ threads });
  const blas = new BlasKernels(wasm, library);
  for (const s of shapes) {
    const p = setup(wasm, s);
    const flop = 2 * s.m * s.n * s.k;
    wasm.gemm(p); // warm-up: V8 tiers the wasm up
    blas.gemm(p);
    const w: number[] = [];
    const b: number[] = [];
    const o: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      w.push(flop / time(() => wasm.gemm(p)) / 1e9);
      b.push(flop / time(() => blas.gemm(p)) / 1e9);
      if (setOpenblasThreads && threads > 1) {
        setOpenblasThreads(threads);
        o.push(flop / time(() => blas.gemm(p)) / 1e9);
        setOpenblasThreads(1);
      }
    }
    const ratios = b.map((x, i) => x / w[i]!);
    rows.push({
      shape: s.name,
      threads,
      wasmGflops: median(w),
      blasGflops: median(b),
      ratio: median(ratios),
      ratioWorst: Math.min(...ratios),
      ...(o.length > 0
        ? { openblasGflops: median(o), openblasRatio: median(o.map((x, i) => x / w[i]!)) }
        : {}),
    });
    for (const buf of [p.a, p.b, p.c]) wasm.free(buf);
  }
  wasm.dispose();
}

const pad = (x: string, n: number) => x.padEnd(n);
console.log(
  `${pad("shape", 36)} ${pad("thr", 4)} ${pad("wasm GF/s", 10)} ${pad("BLAS GF/s", 10)} ${pad("ratio (worst)", 16)} OpenBLAS own threads`,
);
for (const r of rows) {
  const own =
    r.openblasGflops === undefined
      ? "-"
      : `${r.openblasGflops.toFixed(1)} GF/s, ${r.openblasRatio!.toFixed(2)}x`;
  console.log(
    `${pad(r.shape, 36)} ${pad(String(r.threads), 4)} ${pad(r.wasmGflops.toFixed(1), 10)} ${pad(r.blasGflops.toFixed(1), 10)} ${pad(`${r.ratio.toFixed(2)}x (${r.ratioWorst.toFixed(2)}x)`, 16)} ${own}`,
  );
}
writeBenchResults("blas-gemm", {
  blas: { library: library.name, path: library.path },
  rounds: ROUNDS,
  callsPerRound: CALLS,
  note: "indicative: measured on a shared 2-core machine; ratio = BLAS (engine path, 1 thread) / wasm (threads) GFLOP/s in the same round",
  rows,
});
