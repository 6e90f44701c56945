/**
 * Concurrent sampling on the local engine: R requests of S samples each, submitted at once to the
 * engine's request queue (which decodes side-by-side requests in the same steps, and prefills a
 * prompt shared by several requests once) against the same requests run one after another, in the
 * same run. The "group" rows are RL-shaped: groups of 4 one-sample requests on the same prompt. Same shapes as bench/engine-model (d=256,
 * 4 layers, LoRA rank 8; vocabularies of 1k and 32k). Results are identical either way (decode is
 * row-invariant); only the time differs.
 *
 * Run: npx tsx bench/engine-sampling/run.ts [--quick]
 * Writes bench/results/engine-sampling.json.
 */
import type { EngineSampleRequest } from "../../src/local/engine/api.js";
import { EngineCore } from "../../src/local/engine/core/engine-core.js";
import { EngineRequestQueue } from "../../src/local/engine/core/request-queue.js";
import { createKernels } from "../../src/local/engine/kernels/index.js";
import { BENCH_LORA, benchShape } from "../engine-shape.js";
import { writeBenchResults } from "../write-results.js";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 1 : 3;

const kernels = await createKernels({ prefer: "wasm", threads: 2 });
const core = new EngineCore(kernels, {
  presets: false,
  resolveUnknown: false,
  models: [1024, 32768].map((v) => ({ name: `v${v}`, config: benchShape(v) })),
});
const rows: Array<Record<string, string | number>> = [];
for (const vocab of [1024, 32768]) {
  const base = `v${vocab}`;
  await core.createAdapter(base, base, BENCH_LORA);
  for (const [requests, samples, group] of [
    [8, 1, 1],
    [8, 4, 1],
    [16, 4, 1],
    [32, 1, 4],
  ] as const) {
    const maxTokens = quick ? 16 : 48;
    const reqs: EngineSampleRequest[] = Array.from({ length: requests }, (_, i) => ({
      baseModel: base,
      adapterId: base,
      prompt: Int32Array.from(
        { length: 120 + Math.floor(i / group) },
        (_, j) => (Math.floor(i / group) * 131 + j * 31) % vocab,
      ),
      numSamples: samples,
      params: { maxTokens, seed: i, temperature: 1 },
      promptLogprobs: false,
      topkPromptLogprobs: 0,
    }));
    const tokens = requests * samples * maxTokens;
    let oneByOne = Number.POSITIVE_INFINITY;
    let batched = Number.POSITIVE_INFINITY;
    for (let round = 0; round < ROUNDS; round++) {
      let t0 = performance.now();
      for (const r of reqs) await core.sample(r);
      oneByOne = Math.min(oneByOne, performance.now() - t0);
      const queue = new EngineRequestQueue(core);
      t0 = performance.now();
      await Promise.all(reqs.map((r) => queue.sample(r)));
      batched = Math.min(batched, performance.now() - t0);
    }
    rows.push({
      vocab,
      requests,
      "samples each": samples,
      "requests per prompt": group,
      "one by one tok/s": Math.round(tokens / (oneByOne / 1000)),
      "batched tok/s": Math.round(tokens / (batched / 1000)),
      speedup: Number((oneByOne / batched).toFixed(2)),
    });
  }
}
console.table(rows);
writeBenchResults("engine-sampling", {
  note: "R concurrent sample requests through the engine's request queue vs one after another; best of rounds; maxTokens per sample (no EOS)",
  rounds: ROUNDS,
  rows,
});
await core.close();
