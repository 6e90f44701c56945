/**
 * Finite-difference check of a custom loss's hand-written gradient. TypeScript has no autograd,
 * so every `CustomLossFn` returns its own `grads`; this catches a wrong one before it trains.
 */
import type { CustomLossFn } from "../client/custom-loss.js";
import { TinkerValidationError } from "../client/errors.js";
import type { Datum } from "../client/types/datum.js";

/** Tolerances of {@link checkLossGradient}. */
export interface GradientCheckOptions {
  /** Half-width of the central difference. Default 1e-3. */
  readonly eps?: number;
  /** Relative tolerance. Default 1e-3. */
  readonly rtol?: number;
  /** Absolute tolerance. Default 1e-5. */
  readonly atol?: number;
}

/** The entry whose analytic and numeric gradients disagree most (relative to the tolerance). */
export interface GradientCheckEntry {
  readonly datum: number;
  readonly index: number;
  readonly analytic: number;
  readonly numeric: number;
}

/** Outcome of {@link checkLossGradient}. */
export interface GradientCheckResult {
  /** Every entry within `atol + rtol * |numeric|`. */
  readonly ok: boolean;
  readonly maxAbsError: number;
  /** max |analytic - numeric| / max(|numeric|, atol). */
  readonly maxRelError: number;
  /** Undefined only when there are no logprobs at all. */
  readonly worst: GradientCheckEntry | undefined;
  /** One line naming the worst entry, for test failures and logs. */
  readonly message: string;
}

/**
 * Compare `fn`'s gradient with central finite differences: each logprob entry is moved by ±eps
 * (one at a time) and the loss re-evaluated. The step actually taken is measured on the stored
 * float32 values, so float32 rounding of `x ± eps` does not bias the quotient. Costs two loss
 * evaluations per entry: use it on small batches.
 */
export async function checkLossGradient(
  fn: CustomLossFn,
  input: { readonly data: readonly Datum[]; readonly logprobs: readonly Float32Array[] },
  options: GradientCheckOptions = {},
): Promise<GradientCheckResult> {
  const eps = options.eps ?? 1e-3;
  const rtol = options.rtol ?? 1e-3;
  const atol = options.atol ?? 1e-5;
  for (const [k, v] of Object.entries({ eps, rtol, atol })) {
    if (!(Number.isFinite(v) && v > 0)) {
      throw new TinkerValidationError(`${k} must be a finite number > 0, got ${v}`, k);
    }
  }
  const { data } = input;
  const base = input.logprobs.map((lp) => Float32Array.from(lp));
  const result = await fn(
    data,
    base.map((lp) => Float32Array.from(lp)),
  );
  if (result.grads.length !== base.length) {
    throw new TinkerValidationError(
      `the loss returned ${result.grads.length} gradient arrays for ${base.length} datums`,
      "grads",
    );
  }
  const lossAt = async (i: number, j: number, value: number): Promise<number> => {
    const lps = base.map((lp) => Float32Array.from(lp));
    lps[i]![j] = value;
    return (await fn(data, lps)).loss;
  };

  let maxAbs = 0;
  let maxRel = 0;
  let worstScore = -1;
  let worst: GradientCheckEntry | undefined;
  let ok = true;
  for (let i = 0; i < base.length; i++) {
    const lp = base[i]!;
    const g = result.grads[i]!;
    if (g.length !== lp.length) {
      throw new TinkerValidationError(
        `grads[${i}] has ${g.length} values but logprobs[${i}] has ${lp.length}`,
        `grads[${i}]`,
      );
    }
    for (let j = 0; j < lp.length; j++) {
      const up = Math.fround(lp[j]! + eps);
      const down = Math.fround(lp[j]! - eps);
      if (up === down) {
        throw new TinkerValidationError(
          `eps ${eps} is below the float32 spacing at logprobs[${i}][${j}] = ${lp[j]}; use a larger eps`,
          "eps",
        );
      }
      const numeric = ((await lossAt(i, j, up)) - (await lossAt(i, j, down))) / (up - down);
      const analytic = g[j]!;
      const abs = Math.abs(analytic - numeric);
      const tol = atol + rtol * Math.abs(numeric);
      if (!(abs <= tol)) ok = false;
      maxAbs = Math.max(maxAbs, abs);
      maxRel = Math.max(maxRel, abs / Math.max(Math.abs(numeric), atol));
      const score = Number.isNaN(abs) ? Number.POSITIVE_INFINITY : abs / tol;
      if (score > worstScore) {
        worstScore = score;
        worst = { datum: i, index: j, analytic, numeric };
      }
    }
  }
  const where = worst
    ? `worst entry datum ${worst.datum} index ${worst.index}: analytic ${worst.analytic}, numeric ${worst.numeric}`
    : "no logprobs to check";
  const message = ok
    ? `gradient matches finite differences (max abs error ${maxAbs.toExponential(2)}; ${where})`
    : `gradient does not match finite differences (max abs error ${maxAbs.toExponential(2)}, max rel error ${maxRel.toExponential(2)}); ${where}`;
  return { ok, maxAbsError: maxAbs, maxRelError: maxRel, worst, message };
}
