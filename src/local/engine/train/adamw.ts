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
  validateAdamParams(adam);
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
  if (n > 0) {
    // Valid hyperparameters can still overflow float32 (a huge learning rate on real gradients);
    // such a step is undone rather than leaving an adapter that only ever outputs NaN.
    const before = {
      param: adapter.params.slice(0, n),
      m: adapter.m.slice(0, n),
      v: adapter.v.slice(0, n),
    };
    const t = adapter.step + 1;
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
    const finite =
      Number.isFinite(kernels.sumSquares(adapter.params, n)) &&
      Number.isFinite(kernels.sumSquares(adapter.m, n)) &&
      Number.isFinite(kernels.sumSquares(adapter.v, n));
    if (!finite) {
      adapter.params.set(before.param);
      adapter.m.set(before.m);
      adapter.v.set(before.v);
      throw new TinkerValidationError(
        `this optimizer step (learning_rate ${adam.learningRate}, eps ${adam.eps}, weight_decay ${adam.weightDecay}) would make adapter parameters non-finite in float32, so it was refused and the adapter and its gradients left unchanged; retry with a smaller learning_rate (or a larger eps)`,
        "adam_params.learning_rate",
      );
    }
  }
  adapter.step += 1;
  adapter.zeroGrad();
  return { "grad_norm:mean": norm, "learning_rate:mean": adam.learningRate };
}

/** Largest finite float32: hyperparameters beyond it become Inf inside the kernels. */
const FLOAT32_MAX = 3.4028234663852886e38;
/** Smallest normal float32: a smaller eps is flushed to 0 (or lost next to sqrt(v)) in float32. */
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * Throws TinkerValidationError (field `adam_params.<name>`) unless every AdamW hyperparameter is
 * one float32 arithmetic can use: finite, within float32 range, `eps` positive and normal, betas in
 * [0, 1).
 */
export function validateAdamParams(a: Required<AdamParams>): void {
  const bad = (field: string, why: string, got: number): never => {
    throw new TinkerValidationError(
      `adam_params.${field} ${why}, got ${got}`,
      `adam_params.${field}`,
    );
  };
  const inRange = (v: number, min: number) => Number.isFinite(v) && v >= min && v <= FLOAT32_MAX;
  if (!inRange(a.learningRate, 0))
    bad("learning_rate", "must be a number in [0, 3.4e38] (float32 range)", a.learningRate);
  if (!(a.beta1 >= 0 && a.beta1 < 1)) bad("beta1", "must be in [0, 1)", a.beta1);
  if (!(a.beta2 >= 0 && a.beta2 < 1)) bad("beta2", "must be in [0, 1)", a.beta2);
  if (!inRange(a.eps, FLOAT32_MIN_NORMAL))
    bad("eps", "must be a positive number in [1.2e-38, 3.4e38] (float32, e.g. 1e-8)", a.eps);
  if (!inRange(a.weightDecay, 0))
    bad("weight_decay", "must be a number in [0, 3.4e38] (float32 range)", a.weightDecay);
  if (!inRange(a.gradClipNorm, 0))
    bad("grad_clip_norm", "must be a number in [0, 3.4e38] (0 = no clipping)", a.gradClipNorm);
}
