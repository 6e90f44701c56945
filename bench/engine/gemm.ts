// GEMM throughput of the WebAssembly kernels (plain and relaxed SIMD, 1 and 2 threads) against
// plain-JS baselines measured in the same run.
//
//   npx tsx bench/engine/gemm.ts            prints a table, writes bench/results/gemm.json
//   GEMM_BENCH_QUICK=1 npx tsx ...          fewer repetitions
import { cpus, loadavg } from "node:os";
import { createJsKernels } from "../../src/local/engine/kernels/js.js";
import type { GemmParams, Kernels } from "../../src/local/engine/kernels/types.js";
import {
  createWasmKernelsSync,
  relaxedSimdSupported,
} from "../../src/local/engine/kernels/wasm/index.js";
import { writeBenchResults } from "../write-results.js";

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
  {
    name: "NT batch 16 of 256x256x64",
    transA: false,
    transB: true,
    m: 256,
    n: 256,
    k: 64,
    batch: 16,
  },
  { name: "NT decode 4x4096x1024", transA: false, transB: true, m: 4, n: 4096, k: 1024, batch: 1 },
];

function flops(s: Shape): number {
  return 2 * s.m * s.n * s.k * s.batch;
}

interface Timing {
  /** Median wall seconds per call. */
  wall: number;
  /** Median CPU seconds per call, all threads of the process (robust to other load on the machine). */
  cpu: number;
}

const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** Median per call after warm-up (V8 tiers wasm up from Liftoff to TurboFan). */
function timeIt(fn: () => void, minSeconds: number): Timing {
  for (let i = 0; i < 3; i++) fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  const start = performance.now();
  while (wall.length < 5 || (performance.now() - start) / 1000 < minSeconds) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wall.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
    if (wall.length >= 200) break;
  }
  return { wall: median(wall), cpu: median(cpu) };
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
  /** Wall-clock GFLOP/s. */
  gflops: number;
  /** GFLOP per CPU-second (all threads): what a busy core achieves, whatever else runs. */
  gflopsPerCore: number;
  msPerCall: number;
}

const rows: Row[] = [];
const record = (shape: Shape, impl: string, threads: number, t: Timing) => {
  rows.push({
    shape: shape.name,
    impl,
    threads,
    gflops: flops(shape) / t.wall / 1e9,
    gflopsPerCore: flops(shape) / t.cpu / 1e9,
    msPerCall: t.wall * 1e3,
  });
};

const main = shapes[0]!;
{
  const js = createJsKernels();
  const p = setup(js, main);
  record(
    main,
    "plain JS (naive i-p-j)",
    1,
    timeIt(() => naiveGemm(p), MIN_SECONDS),
  );
  record(
    main,
    "js kernels (createJsKernels)",
    1,
    timeIt(() => js.gemm(p), MIN_SECONDS),
  );
}

const builds: { relaxedSimd: boolean }[] = [{ relaxedSimd: false }];
if (relaxedSimdSupported()) builds.push({ relaxedSimd: true });
for (const { relaxedSimd } of builds) {
  for (const threads of [1, 2]) {
    const K = createWasmKernelsSync({ threads, relaxedSimd });
    for (const s of shapes) {
      const p = setup(K, s);
      record(
        s,
        K.name,
        threads,
        timeIt(() => K.gemm(p), MIN_SECONDS),
      );
      for (const buf of [p.a, p.b, p.c]) K.free(buf);
    }
    K.dispose();
  }
}

// Fused kernels at training-step sizes (Qwen3-style d=256, 4x256 tokens, V=32k), wasm vs js.
interface FusedRow {
  kernel: string;
  impl: string;
  threads: number;
  msPerCall: number;
  cpuMsPerCall: number;
}
const fusedRows: FusedRow[] = [];
{
  const T = 256;
  const rowsN = 4 * T;
  const V = 32768;
  const [H, KVH, D, dim, ff] = [4, 2, 64, 256, 768];
  const impls: Kernels[] = [createJsKernels()];
  for (const { relaxedSimd } of builds) {
    for (const threads of [1, 2]) impls.push(createWasmKernelsSync({ threads, relaxedSimd }));
  }
  for (const K of impls) {
    const buf = (n: number, seed: number) => {
      const b = K.alloc(n);
      fill(b, seed);
      return b;
    };
    const logits = buf(rowsN * V, 1);
    const targets = Int32Array.from({ length: rowsN }, (_, i) => (i * 7919) % V);
    const lp = K.alloc(rowsN);
    const lse = K.alloc(rowsN);
    const g = buf(rowsN, 2);
    const q = buf(T * H * D, 3);
    const k = buf(T * KVH * D, 4);
    const v = buf(T * KVH * D, 5);
    const out = K.alloc(T * H * D);
    const alse = K.alloc(H * T);
    const dq = K.alloc(q.length);
    const dk = K.alloc(k.length);
    const dv = K.alloc(v.length);
    const x = buf(rowsN * dim, 6);
    const w = buf(dim, 7);
    const y = K.alloc(rowsN * dim);
    const rstd = K.alloc(rowsN);
    const gate = buf(rowsN * ff, 8);
    const up = buf(rowsN * ff, 9);
    const act = K.alloc(rowsN * ff);
    const attn = {
      q,
      k,
      v,
      out,
      lse: alse,
      seqLen: T,
      nHeads: H,
      nKvHeads: KVH,
      headDim: D,
      scale: 0.125,
    };
    const cases: [string, () => void][] = [
      [
        `logSoftmaxGather ${rowsN}x${V}`,
        () => K.logSoftmaxGather(logits, rowsN, V, targets, 1, lp, lse),
      ],
      [
        `logSoftmaxBackward ${rowsN}x${V}`,
        () => K.logSoftmaxBackward(logits, rowsN, V, targets, 1, g, lse),
      ],
      [`attentionForward T=${T} H=${H} KVH=${KVH} D=${D}`, () => K.attentionForward(attn)],
      [
        `attentionBackward T=${T} H=${H} KVH=${KVH} D=${D}`,
        () => K.attentionBackward({ ...attn, dOut: q, dq, dk, dv }),
      ],
      [`rmsNormForward ${rowsN}x${dim}`, () => K.rmsNormForward(x, w, y, rstd, rowsN, dim, 1e-6)],
      [`swigluForward ${rowsN}x${ff}`, () => K.swigluForward(gate, up, act, rowsN * ff)],
    ];
    for (const [kernel, fn] of cases) {
      if (kernel.startsWith("logSoftmaxGather")) fill(logits, 1);
      const t = timeIt(fn, MIN_SECONDS / 4);
      fusedRows.push({
        kernel,
        impl: K.name,
        threads: K.threads,
        msPerCall: t.wall * 1e3,
        cpuMsPerCall: t.cpu * 1e3,
      });
    }
    K.dispose();
  }
}

const baseline = rows.find((r) => r.impl.startsWith("plain JS"))!.gflops;
const plain1 = new Map(
  rows.filter((r) => r.impl === "wasm-simd" && r.threads === 1).map((r) => [r.shape, r.gflops]),
);
console.log(
  `GEMM GFLOP/s (median; ${cpus().length} CPUs "${cpus()[0]?.model ?? "?"}", Node ${process.versions.node}, load ${loadavg()[0]!.toFixed(2)})`,
);
console.log(
  "| shape | implementation | threads | GFLOP/s | GFLOP per CPU-s | ms/call | x plain JS | x wasm-simd 1 thread |\n|---|---|---|---|---|---|---|---|",
);
for (const r of rows) {
  const vsPlain = plain1.get(r.shape);
  console.log(
    `| ${r.shape} | ${r.impl} | ${r.threads} | ${r.gflops.toFixed(2)} | ${r.gflopsPerCore.toFixed(2)} | ${r.msPerCall.toFixed(2)} | ${(r.gflops / baseline).toFixed(1)} | ${vsPlain ? (r.gflops / vsPlain).toFixed(2) : "-"} |`,
  );
}

const jsMs = new Map(fusedRows.filter((r) => r.impl === "js").map((r) => [r.kernel, r.msPerCall]));
console.log(
  "\nFused kernels (median ms per call; the backward softmax overwrites logits, so it is timed on its own output)",
);
console.log(
  "| kernel | implementation | threads | ms/call | CPU ms/call | x js |\n|---|---|---|---|---|---|",
);
for (const r of fusedRows) {
  console.log(
    `| ${r.kernel} | ${r.impl} | ${r.threads} | ${r.msPerCall.toFixed(2)} | ${r.cpuMsPerCall.toFixed(2)} | ${(jsMs.get(r.kernel)! / r.msPerCall).toFixed(1)} |`,
  );
}

writeBenchResults("gemm", {
  cpuModel: cpus()[0]?.model,
  baselineGflops: baseline,
  results: rows.map((r) => ({ ...r, vsPlainJs: r.gflops / baseline })),
  fused: fusedRows.map((r) => ({ ...r, vsJs: jsMs.get(r.kernel)! / r.msPerCall })),
});
