import { TinkerError, TinkerValidationError } from "../../../client/errors.js";
import type { AdamParams } from "../../../client/types/params.js";
import type { Kernels } from "../kernels/types.js";
import type { LoraAdapter } from "../model/lora.js";

/**
 * One AdamW step on the adapter's accumulated gradients, then zero them. Matches torch AdamW with
 * bias correction and decoupled weight decay (p -= lr * wd * p); with `gradClipNorm > 0` gradients
 * are first scaled by min(1, clip / (norm + 1e-6)) using the global L2 norm over all parameters.
 * Returns metrics: `grad_norm:mean` (before clipping) and `learning_rate:mean`.
 */
export function adamWStep(
  kernels: Kernels,
  adapter: LoraAdapter,
  adam: Required<AdamParams>,
): Record<string, number> {
  checkAdam(adam);
  const n = adapter.paramCount;
  const norm = Math.sqrt(kernels.sumSquares(adapter.grads, n));
  if (!Number.isFinite(norm)) {
    adapter.zeroGrad();
    throw new TinkerError(
      "gradients are not finite (NaN or Inf); the step was skipped and the gradients cleared",
    );
  }
  const gradScale =
    adam.gradClipNorm > 0 && norm > adam.gradClipNorm ? adam.gradClipNorm / (norm + 1e-6) : 1;
  adapter.step += 1;
  const t = adapter.step;
  if (n > 0) {
    kernels.adamW({
      param: adapter.params,
      grad: adapter.grads,
      m: adapter.m,
      v: adapter.v,
      n,
      lr: adam.learningRate,
      beta1: adam.beta1,
      beta2: adam.beta2,
      eps: adam.eps,
      weightDecay: adam.weightDecay,
      bc1: 1 - adam.beta1 ** t,
      bc2: 1 - adam.beta2 ** t,
      gradScale,
    });
  }
  adapter.zeroGrad();
  return { "grad_norm:mean": norm, "learning_rate:mean": adam.learningRate };
}

function checkAdam(a: Required<AdamParams>): void {
  const bad = (field: string, why: string): never => {
    throw new TinkerValidationError(`adam_params.${field} ${why}`, `adam_params.${field}`);
  };
  if (!Number.isFinite(a.learningRate) || a.learningRate < 0)
    bad("learning_rate", `must be a finite number >= 0, got ${a.learningRate}`);
  if (!(a.beta1 >= 0 && a.beta1 < 1)) bad("beta1", `must be in [0, 1), got ${a.beta1}`);
  if (!(a.beta2 >= 0 && a.beta2 < 1)) bad("beta2", `must be in [0, 1), got ${a.beta2}`);
  if (!Number.isFinite(a.eps) || a.eps < 0)
    bad("eps", `must be a finite number >= 0, got ${a.eps}`);
  if (!Number.isFinite(a.weightDecay) || a.weightDecay < 0)
    bad("weight_decay", `must be a finite number >= 0, got ${a.weightDecay}`);
  if (!Number.isFinite(a.gradClipNorm) || a.gradClipNorm < 0)
    bad("grad_clip_norm", `must be a finite number >= 0, got ${a.gradClipNorm}`);
}
