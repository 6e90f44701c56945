import type { LossFnType } from "../../../client/types/params.js";

/**
 * Defaults for `loss_fn_config`. PPO and CISPO clip the importance ratio to [low, high] (the bounds
 * themselves, i.e. 1 - eps and 1 + eps with the reference's eps = 0.2); DRO's quadratic penalty
 * coefficient `beta` defaults to 0.05.
 */
export const LOSS_CONFIG_DEFAULTS = {
  clip_low_threshold: 0.8,
  clip_high_threshold: 1.2,
  beta: 0.05,
} as const;

/** `loss_fn_config` keys each loss accepts. */
export const LOSS_CONFIG_KEYS: Readonly<Record<LossFnType, readonly string[]>> = {
  cross_entropy: [],
  importance_sampling: [],
  ppo: ["clip_low_threshold", "clip_high_threshold"],
  cispo: ["clip_low_threshold", "clip_high_threshold"],
  dro: ["beta"],
};

/**
 * Per-token inputs of the batch, flattened over all rows (row r of the concatenated batch).
 * Cross-entropy entries are [rows * k] (k targets per row, padded with weight 0); the policy
 * losses have k = 1.
 */
export interface LossInputs {
  readonly lossFn: LossFnType;
  readonly k: number;
  /** Per target: CE weight, or the optional per-token multiplier of the policy losses (default 1). */
  readonly weights: Float32Array;
  /** Sampler logprobs q (policy losses). */
  readonly samplerLogprobs: Float32Array | null;
  readonly advantages: Float32Array | null;
  readonly clipLow: Float32Array | null;
  readonly clipHigh: Float32Array | null;
  readonly beta: number;
}

/**
 * Loss terms and dLoss/dlp for targets [start, start + n) of the flattened batch (index i covers row
 * floor(i / k)). Every loss is a sum over tokens of a function of that token's learner logprob lp:
 *
 * - cross_entropy:       -w lp
 * - importance_sampling: -w r A,                            r = exp(lp - q)
 * - ppo:                 -w min(r A, clip(r, lo, hi) A)
 * - cispo:               -w stopgrad(clip(r, lo, hi)) lp A
 * - dro:                 -w (lp A - beta/2 (lp - q)^2)
 *
 * Writes the gradient into `grad` (when given) and returns the block's loss sum (float64).
 */
export function lossBlock(
  inp: LossInputs,
  lp: Float32Array,
  start: number,
  n: number,
  grad: Float32Array | null,
): number {
  const { weights: w, samplerLogprobs: q, advantages: adv } = inp;
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const i = start + j;
    const wi = w[i]!;
    const l = lp[j]!;
    let loss = 0;
    let dl = 0;
    switch (inp.lossFn) {
      case "cross_entropy":
        loss = -wi * l;
        dl = -wi;
        break;
      case "importance_sampling": {
        const a = adv![i]!;
        const r = Math.exp(l - q![i]!);
        loss = -wi * r * a;
        dl = -wi * r * a;
        break;
      }
      case "ppo": {
        const a = adv![i]!;
        const r = Math.exp(l - q![i]!);
        const rc = clamp(r, inp.clipLow![i]!, inp.clipHigh![i]!);
        const unclipped = r * a;
        const clipped = rc * a;
        // The clipped branch is constant in lp outside [lo, hi]; inside it both branches agree.
        if (unclipped <= clipped) {
          loss = -wi * unclipped;
          dl = -wi * r * a;
        } else {
          loss = -wi * clipped;
          dl = 0;
        }
        break;
      }
      case "cispo": {
        const a = adv![i]!;
        const rc = clamp(Math.exp(l - q![i]!), inp.clipLow![i]!, inp.clipHigh![i]!);
        loss = -wi * rc * l * a;
        dl = -wi * rc * a;
        break;
      }
      case "dro": {
        const a = adv![i]!;
        const diff = l - q![i]!;
        loss = -wi * (l * a - 0.5 * inp.beta * diff * diff);
        dl = -wi * (a - inp.beta * diff);
        break;
      }
    }
    sum += loss;
    if (grad) grad[j] = dl;
  }
  return sum;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(Math.max(x, lo), hi);
}
