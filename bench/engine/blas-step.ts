// One LoRA training step (forward + backward, cross-entropy) on a model of Qwen3-0.6B's widths and
// vocabulary with fewer layers, on the wasm kernels and on the wasm kernels + system BLAS, in
// interleaved rounds. Indicative on a shared machine.
//
//   npx tsx bench/engine/blas-step.ts                 2 layers, 1 x 512 tokens, 2 threads
//   BLAS_STEP_LAYERS=4 BLAS_STEP_THREADS=1 BLAS_STEP_VOCAB=32768 npx tsx ...   other sizes
import { makeDatum } from "../../src/client/types/datum.js";
import { withBlas } from "../../src/local/engine/kernels/blas/index.js";
import type { Kernels } from "../../src/local/engine/kernels/types.js";
import { createWasmKernelsSync } from "../../src/local/engine/kernels/wasm/index.js";
import type { ModelConfig } from "../../src/local/engine/model/config.js";
import { LoraAdapter } from "../../src/local/engine/model/lora.js";
import { Transformer } from "../../src/local/engine/model/transformer.js";
import { initRandomWeights, loadBaseWeights } from "../../src/local/engine/model/weights.js";
import { toEngineDatum } from "../../src/local/engine/train/datum.js";
import { forwardBackward } from "../../src/local/engine/train/forward-backward.js";
import { writeBenchResults } from "../write-results.js";

const layers = Number(process.env.BLAS_STEP_LAYERS ?? 2);
const threads = Number(process.env.BLAS_STEP_THREADS ?? 2);
const tokens = Number(process.env.BLAS_STEP_TOKENS ?? 512);
const ROUNDS = Number(process.env.BLAS_STEP_ROUNDS ?? 3);
// The head's logits are computed in blocks of floor(4 Mi / vocab) rows: 27 at Qwen3's vocabulary,
// where each block streams the whole 622 MB embedding and the product is memory-bound on either
// backend. A smaller vocabulary shows the layers' share.
const vocab = Number(process.env.BLAS_STEP_VOCAB ?? 151936);

const config: ModelConfig = {
  arch: "qwen3",
  vocabSize: vocab,
  hiddenSize: 1024,
  intermediateSize: 3072,
  numLayers: layers,
  numHeads: 16,
  numKvHeads: 8,
  headDim: 128,
  rmsNormEps: 1e-6,
  ropeTheta: 1000000,
  maxPositionEmbeddings: 40960,
  tieWordEmbeddings: true,
  qkNorm: true,
  eosTokenIds: [151645],
};
const lora = { rank: 32, seed: 1, trainAttn: true, trainMlp: true, trainUnembed: true };

const tensors = initRandomWeights(config, 0);
const seq = Array.from({ length: tokens + 1 }, (_, i) => (i * 7919) % config.vocabSize);
const data = [
  toEngineDatum(
    makeDatum(seq.slice(0, -1), {
      target_tokens: seq.slice(1),
      weights: seq.slice(1).map(() => 1),
    }),
    0,
    false,
  ),
];

function setup(K: Kernels): { step: () => number; loss: () => number } {
  const model = new Transformer(K, config, loadBaseWeights(K, config, tensors));
  const adapter = LoraAdapter.create(K, config, lora);
  let loss = Number.NaN;
  return {
    step: () => {
      const t0 = performance.now();
      adapter.zeroGrad();
      loss = forwardBackward(model, adapter, data, "cross_entropy", undefined, false, 4096).metrics[
        "loss:sum"
      ]!;
      return (performance.now() - t0) / 1000;
    },
    loss: () => loss,
  };
}

const wasmK = createWasmKernelsSync({ threads });
const blasR = await withBlas(createWasmKernelsSync({ threads }), "auto");
if (!blasR.ok) {
  console.error(`no BLAS: ${blasR.reason}`);
  process.exit(1);
}
const sides = { wasm: setup(wasmK), blas: setup(blasR.kernels) };
sides.wasm.step();
sides.blas.step(); // warm-up
const secs: Record<"wasm" | "blas", number[]> = { wasm: [], blas: [] };
for (let r = 0; r < ROUNDS; r++) {
  secs.wasm.push(sides.wasm.step());
  secs.blas.push(sides.blas.step());
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const ratios = secs.wasm.map((w, i) => w / secs.blas[i]!);
const result = {
  layers,
  threads,
  tokens,
  vocab,
  blas: blasR.kernels.library.name,
  wasmSeconds: secs.wasm,
  blasSeconds: secs.blas,
  medianSpeedup: median(ratios),
  worstSpeedup: Math.min(...ratios),
  lossWasm: sides.wasm.loss(),
  lossBlas: sides.blas.loss(),
};
console.log(
  `Qwen3-0.6B widths, ${layers} layers, vocabulary ${vocab}, LoRA r=32 attn+mlp+unembed, 1 x ${tokens} tokens, ${threads} threads`,
);
console.log(
  `wasm ${median(secs.wasm).toFixed(2)} s/step, +BLAS ${median(secs.blas).toFixed(2)} s/step: ${result.medianSpeedup.toFixed(2)}x (worst round ${result.worstSpeedup.toFixed(2)}x); loss ${result.lossWasm.toFixed(4)} vs ${result.lossBlas.toFixed(4)}`,
);
writeBenchResults("blas-step", result);
wasmK.dispose();
blasR.kernels.dispose();
