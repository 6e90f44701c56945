import type { ForwardBackwardOutput } from "../../../client/types/outputs.js";
import type { LossFnConfig } from "../../../client/types/params.js";
import { TensorData } from "../../../client/types/tensor-data.js";
import type { LoraAdapter } from "../model/lora.js";
import { headBlockRows, type Transformer } from "../model/transformer.js";
import type { EngineDatum } from "./datum.js";
import { lossBlock } from "./losses.js";
import { prepareBatch } from "./validate.js";

/**
 * Forward (and unless `forwardOnly`, backward) of `lossFn` over `data`. Gradients accumulate into
 * the adapter's `grads` until the optimizer step. Validation happens before any computation, so a
 * rejected call leaves the adapter untouched.
 *
 * The vocabulary projection, log-softmax and loss run fused over blocks of rows: each block's
 * logits are computed, reduced to the target logprobs, turned into dLoss/dlogits in place and
 * projected back, so no [tokens, vocab] matrix exists for the whole batch.
 */
export function forwardBackward(
  model: Transformer,
  adapter: LoraAdapter | null,
  data: readonly EngineDatum[],
  lossFn: string,
  lossFnConfig: LossFnConfig | undefined,
  forwardOnly: boolean,
  maxContextLength: number,
): ForwardBackwardOutput {
  const c = model.config;
  const batch = prepareBatch(data, lossFn, lossFnConfig, {
    vocabSize: c.vocabSize,
    maxContextLength,
  });
  const backward = !forwardOnly && adapter !== null;
  const K = model.kernels;
  const state = model.forward(batch.tokens, batch.spans, adapter, backward);
  const s = model.scratch();
  try {
    const rows = state.rows;
    const V = c.vocabSize;
    const d = c.hiddenSize;
    const k = batch.loss.k;
    const block = headBlockRows(V, rows);
    const logits = s.alloc(block * V);
    const lp = new Float32Array(rows * k);
    const lse = s.alloc(block);
    const g = s.alloc(block * k);
    const lmLora = adapter?.lmHeadGroup;
    const rank = adapter?.lora.rank ?? 0;
    const hLm = lmLora ? s.alloc(block * rank) : undefined;
    const gLm = lmLora ? s.alloc(block * rank) : null;
    const dxf = backward ? s.alloc(rows * d) : null;
    let lossSum = 0;
    for (let r0 = 0; r0 < rows; r0 += block) {
      const nb = Math.min(block, rows - r0);
      const xf = state.xf.subarray(r0 * d, (r0 + nb) * d);
      const lg = logits.subarray(0, nb * V);
      model.logits(xf, nb, adapter, lg, hLm);
      const tg = batch.targets.subarray(r0 * k, (r0 + nb) * k);
      const lpb = lp.subarray(r0 * k, (r0 + nb) * k);
      // Kernels read float buffers from their heap: gather into `g` first, then copy out.
      const lpHeap = g.subarray(0, nb * k);
      K.logSoftmaxGather(lg, nb, V, tg, k, lpHeap, lse);
      lpb.set(lpHeap);
      lossSum += lossBlock(batch.loss, lpb, r0 * k, nb * k, backward ? lpHeap : null);
      if (dxf) {
        K.logSoftmaxBackward(lg, nb, V, tg, k, lpHeap, lse);
        model.logitsBackward(lg, xf, nb, adapter, hLm, gLm, dxf.subarray(r0 * d, (r0 + nb) * d));
      }
    }
    if (dxf) model.backward(state, dxf);

    const outputs: Array<Record<string, TensorData>> = [];
    for (const dm of batch.datums) {
      const kd = Math.max(dm.k2d, 1);
      const out = new Float32Array(dm.len * kd);
      for (let r = 0; r < dm.len; r++) {
        for (let j = 0; j < kd; j++) out[r * kd + j] = lp[(dm.start + r) * k + j]!;
      }
      outputs.push({ logprobs: TensorData.fromTyped(out, dm.k2d ? [dm.len, dm.k2d] : [dm.len]) });
    }
    return {
      lossFnOutputType: "ArrayRecord",
      lossFnOutputs: outputs,
      metrics: { "loss:sum": lossSum },
    };
  } finally {
    s.release();
    state.scratch.release();
  }
}
