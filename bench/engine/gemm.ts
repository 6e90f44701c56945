// GEMM throughput of the WebAssembly kernels (plain and relaxed SIMD, 1 and 2 threads) against
// plain-JS baselines measured in the same run.
//
//   npx tsx bench/engine/gemm.ts            prints a table, writes bench/results/gemm.json
//   GEMM_BENCH_QUICK=1 npx tsx ...          fewer repetitions
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createJsKernels } from "../../src/local/engine/kernels/js.js";
import type { GemmParams, Kernels } from "../../src/local/engine/kernels/types.js";
import { createWasmKernelsSync, relaxedSimdSupported } from "../../src/local/engine/kernels/wasm/index.js";

const quick = process.env.GEMM_BENCH_QUICK === "1";
const MIN_SECONDS = quick ? 0.3 : 1.0;

interface Shape {
  name: string;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  batch: number;
}

const shapes: Shape[] = [
  { name: "NN 512x1024x1024", transA: false, transB: false, m: 512, n: 1024, k: 1024, batch: 1 },
  { name: "TN 512x1024x1024", transA: true, transB: false, m: 512, n: 1024, k: 1024, batch: 1 },
  { name: "NT 512x1024x1024", transA: false, transB: true, m: 512, n: 1024, k: 1024, batch: 1 },
  { name: "TT 512x1024x1024", transA: true, transB: true, m: 512, n: 1024, k: 1024, batch: 1 },
  { name: "NT batch 16 of 256x256x64", transA: false, transB: true, m: 256, n: 256, k: 64, batch: 16 },
  { name: "NT decode 4x4096x1024", transA: false, transB: true, m: 4, n: 4096, k: 1024, batch: 1 },
];

function flops(s: Shape): number {
  return 2 * s.m * s.n * s.k * s.batch;
}

/** Median seconds per call after warm-up (V8 tiers wasm up from Liftoff to TurboFan). */
function timeIt(fn: () => void, minSeconds: number): number {
  for (let i = 0; i < 3; i++) fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 5 || (performance.now() - start) / 1000 < minSeconds) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
    if (times.length >= 200) break;
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)]!;
}

function fill(buf: Float32Array, seed: number): void {
  let s = seed;
  for (let i = 0; i < buf.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    buf[i] = s / 4294967296 - 0.5;
  }
}

function setup(K: Kernels, s: Shape): GemmParams {
  const a = K.alloc(s.batch * s.m * s.k);
  const b = K.alloc(s.batch * s.k * s.n);
  const c = K.alloc(s.batch * s.m * s.n);
  fill(a, 1);
  fill(b, 2);
  return { transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a, b, c, batch: s.batch };
}

/** The textbook baseline: i-p-j loops over Float32Arrays (B not transposed, one product). */
function naiveGemm(p: GemmParams): void {
  const { m, n, k, a, b, c } = p;
  c.fill(0, 0, m * n);
  for (let i = 0; i < m; i++) {
    for (let q = 0; q < k; q++) {
      const av = a[i * k + q]!;
      const bo = q * n;
      const co = i * n;
      for (let j = 0; j < n; j++) c[co + j]! += av * b[bo + j]!;
    }
  }
}

interface Row {
  shape: string;
  impl: string;
  threads: number;
  gflops: number;
  msPerCall: number;
}

const rows: Row[] = [];
const record = (shape: Shape, impl: string, threads: number, sec: number) => {
  rows.push({ shape: shape.name, impl, threads, gflops: flops(shape) / sec / 1e9, msPerCall: sec * 1e3 });
};

const main = shapes[0]!;
{
  const js = createJsKernels();
  const p = setup(js, main);
  record(main, "plain JS (naive i-p-j)", 1, timeIt(() => naiveGemm(p), MIN_SECONDS));
  record(main, "js kernels (createJsKernels)", 1, timeIt(() => js.gemm(p), MIN_SECONDS));
}

const builds: { relaxedSimd: boolean }[] = [{ relaxedSimd: false }];
if (relaxedSimdSupported()) builds.push({ relaxedSimd: true });
for (const { relaxedSimd } of builds) {
  for (const threads of [1, 2]) {
    const K = createWasmKernelsSync({ threads, relaxedSimd });
    for (const s of shapes) {
      const p = setup(K, s);
      record(s, K.name, threads, timeIt(() => K.gemm(p), MIN_SECONDS));
      for (const buf of [p.a, p.b, p.c]) K.free(buf);
    }
    K.dispose();
  }
}

const baseline = rows.find((r) => r.impl.startsWith("plain JS"))!.gflops;
const plain1 = new Map(rows.filter((r) => r.impl === "wasm-simd" && r.threads === 1).map((r) => [r.shape, r.gflops]));
console.log(
  `GEMM GFLOP/s (median; ${cpus().length} CPUs "${cpus()[0]?.model ?? "?"}", Node ${process.versions.node}, load ${loadavg()[0]!.toFixed(2)})`,
);
console.log(
  "| shape | implementation | threads | GFLOP/s | ms/call | x plain JS | x wasm-simd 1 thread |\n|---|---|---|---|---|---|---|",
);
for (const r of rows) {
  const vsPlain = plain1.get(r.shape);
  console.log(
    `| ${r.shape} | ${r.impl} | ${r.threads} | ${r.gflops.toFixed(2)} | ${r.msPerCall.toFixed(2)} | ${(r.gflops / baseline).toFixed(1)} | ${vsPlain ? (r.gflops / vsPlain).toFixed(2) : "-"} |`,
  );
}

const out = join(dirname(fileURLToPath(import.meta.url)), "../results/gemm.json");
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.versions.node,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      loadAverage1m: loadavg()[0],
      baselineGflops: baseline,
      results: rows.map((r) => ({ ...r, vsPlainJs: r.gflops / baseline })),
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${out}`);
