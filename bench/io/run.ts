/**
 * Checkpoint I/O throughput: reading and writing safetensors (F32 and BF16) against the plain
 * fs.readFile / fs.writeFile of the same bytes measured in the same run (the floor any loader pays).
 *
 *   npx tsx bench/io/run.ts [--mb 64] [--reps 5]
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
} from "../../src/local/engine/io/index.js";
import { writeBenchResults } from "../write-results.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const MB = arg("mb", 64);
const REPS = arg("reps", 5);

async function median(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  await fn(); // warm-up (page cache, JIT)
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

const dir = await mkdtemp(join(tmpdir(), "tinker-bench-io-"));
try {
  const nTensors = 16;
  const per = Math.floor((MB * 1024 * 1024) / 4 / nTensors);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let s = 1;
  for (let t = 0; t < nTensors; t++) {
    const data = new Float32Array(per);
    for (let i = 0; i < per; i++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      data[i] = s / 2 ** 32 - 0.5;
    }
    tensors.set(`model.layers.${t}.mlp.up_proj.weight`, { shape: [per / 256, 256], data });
  }
  const f32 = join(dir, "f32.safetensors");
  const bf16 = join(dir, "bf16.safetensors");
  await writeSafetensors(f32, tensors);
  await writeSafetensors(bf16, tensors, undefined, { dtype: "BF16" });
  const f32Bytes = (await stat(f32)).size;
  const bf16Bytes = (await stat(bf16)).size;
  const rawF32 = encodeSafetensors(tensors);
  await mkdir(join(dir, "w"), { recursive: true });

  const rows: { case: string; ms: number; baselineMs: number; mbPerS: number; ratio: number }[] =
    [];
  const add = (name: string, ms: number, baselineMs: number, bytes: number) =>
    rows.push({
      case: name,
      ms,
      baselineMs,
      mbPerS: bytes / 1048576 / (ms / 1000),
      ratio: baselineMs / ms,
    });

  const readF32Base = await median(() => readFile(f32));
  add("read F32 -> Float32Array", await median(() => readSafetensors(f32)), readF32Base, f32Bytes);
  const readBf16Base = await median(() => readFile(bf16));
  add(
    "read BF16 -> Float32Array (widen)",
    await median(() => readSafetensors(bf16)),
    readBf16Base,
    bf16Bytes,
  );
  const writeBase = await median(() => writeFile(join(dir, "w", "plain.bin"), rawF32));
  add(
    "write F32 (atomic: temp+fsync+rename)",
    await median(() => writeSafetensors(join(dir, "w", "a.safetensors"), tensors)),
    writeBase,
    f32Bytes,
  );
  add(
    "write BF16 (narrow RNE, atomic)",
    await median(() =>
      writeSafetensors(join(dir, "w", "b.safetensors"), tensors, undefined, { dtype: "BF16" }),
    ),
    writeBase,
    f32Bytes,
  );

  console.log(
    `safetensors I/O, ${nTensors} tensors, ${(f32Bytes / 1048576).toFixed(0)} MB as F32, median of ${REPS}`,
  );
  console.log(
    "case                                     |     ms | baseline ms | MB/s (file) | baseline/ours",
  );
  for (const r of rows) {
    console.log(
      `${r.case.padEnd(40)} | ${r.ms.toFixed(1).padStart(6)} | ${r.baselineMs.toFixed(1).padStart(11)} | ${r.mbPerS.toFixed(0).padStart(11)} | ${r.ratio.toFixed(2).padStart(13)}`,
    );
  }
  console.log(
    "baselines: fs.readFile of the same file; fs.writeFile (no fsync, no rename) of the F32 bytes",
  );
  writeBenchResults("io", { mb: MB, reps: REPS, f32Bytes, bf16Bytes, rows });
} finally {
  await rm(dir, { recursive: true, force: true });
}
