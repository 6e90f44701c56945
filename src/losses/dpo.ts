/**
 * Direct Preference Optimization as a custom loss: the batch holds (chosen, rejected) pairs, and
 * the loss pushes the policy's log-ratio against a frozen reference up for the chosen answer and
 * down for the rejected one.
 */
import type { CustomLossFn, CustomLossResult } from "../client/custom-loss.js";
import { TinkerValidationError } from "../client/errors.js";
import type { SamplingClient } from "../client/sampling-client.js";
import type { Datum } from "../client/types/datum.js";

/** Options of {@link dpoLoss}. */
export interface DpoLossOptions {
  /**
   * Per datum, the reference model's logprob of each target token (aligned with the datum's
   * `target_tokens`); see {@link computeReferenceLogprobs}.
   */
  readonly referenceLogprobs: readonly ArrayLike<number>[];
  /** Scale of the log-ratio margin. Default 0.1 (the cookbook's `dpo_beta`). */
  readonly beta?: number;
}

/** `-log(sigmoid(x))`, without overflow for large |x|. */
function negLogSigmoid(x: number): number {
  return Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

function weightsOf(d: Datum, i: number): ArrayLike<number> {
  const w = d.lossFnInputs.weights;
  if (!w) {
    throw new TinkerValidationError(
      `data[${i}] has no weights; DPO scores a sequence as dot(logprobs, weights), so give each datum weights (1 on the answer tokens)`,
      `data[${i}].lossFnInputs.weights`,
    );
  }
  return w.toDense();
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j]! * b[j]!;
  return s;
}

/**
 * The DPO loss for `forwardBackwardCustom`. Data alternate chosen, rejected (datum 2k is preferred
 * over datum 2k+1). A sequence's logprob is `dot(logprobs, weights)`; with log-ratios
 * `c = lp_c - ref_c` and `r = lp_r - ref_r`, the loss is the mean over pairs of
 * `-log sigmoid(beta (c - r))`.
 *
 * Metrics (means over pairs): `dpo_loss`, `accuracy` (share with c > r), `margin` (beta (c - r)),
 * `chosen_reward` (beta c), `rejected_reward` (beta r), and `num_pairs`.
 */
export function dpoLoss(options: DpoLossOptions): CustomLossFn {
  const beta = options.beta ?? 0.1;
  if (!(typeof beta === "number" && Number.isFinite(beta) && beta > 0)) {
    throw new TinkerValidationError(
      `beta must be a finite number > 0 (the cookbook default is 0.1), got ${beta}`,
      "beta",
    );
  }
  const refs = options.referenceLogprobs;
  return (data, logprobs) => dpoLossValue(data, logprobs, refs, beta);
}

function dpoLossValue(
  data: readonly Datum[],
  logprobs: Float32Array[],
  refs: readonly ArrayLike<number>[],
  beta: number,
): CustomLossResult {
  if (data.length === 0 || data.length % 2 !== 0) {
    throw new TinkerValidationError(
      `DPO needs (chosen, rejected) pairs, so an even number of datums; got ${data.length}. Drop the unpaired last datum`,
      "data",
    );
  }
  if (refs.length !== data.length) {
    throw new TinkerValidationError(
      `referenceLogprobs has ${refs.length} arrays for ${data.length} datums; compute one per datum, in the same order`,
      "referenceLogprobs",
    );
  }
  const weights = data.map((d, i) => weightsOf(d, i));
  const seqLogprob = (i: number, lps: readonly ArrayLike<number>[], what: string): number => {
    const w = weights[i]!;
    const lp = lps[i]!;
    if (lp.length !== w.length) {
      throw new TinkerValidationError(
        `${what}[${i}] has ${lp.length} values but datum ${i} has ${w.length} weights; align them with the targets`,
        `${what}[${i}]`,
      );
    }
    return dot(lp, w);
  };

  const pairs = data.length / 2;
  const grads = logprobs.map((lp) => new Float32Array(lp.length));
  let loss = 0;
  let correct = 0;
  let margin = 0;
  let chosenReward = 0;
  let rejectedReward = 0;
  for (let p = 0; p < pairs; p++) {
    const ci = 2 * p;
    const ri = ci + 1;
    const c = seqLogprob(ci, logprobs, "logprobs") - seqLogprob(ci, refs, "referenceLogprobs");
    const r = seqLogprob(ri, logprobs, "logprobs") - seqLogprob(ri, refs, "referenceLogprobs");
    const z = beta * (c - r);
    loss += negLogSigmoid(z);
    if (c > r) correct++;
    margin += z;
    chosenReward += beta * c;
    rejectedReward += beta * r;
    // d/dz of -log sigmoid(z) is -sigmoid(-z); z moves by +beta per unit of c, -beta per unit of r.
    const dz = -sigmoid(-z) / pairs;
    const wc = weights[ci]!;
    const wr = weights[ri]!;
    const gc = grads[ci]!;
    const gr = grads[ri]!;
    for (let j = 0; j < gc.length; j++) gc[j] = dz * beta * wc[j]!;
    for (let j = 0; j < gr.length; j++) gr[j] = -dz * beta * wr[j]!;
  }
  loss /= pairs;
  return {
    loss,
    grads,
    metrics: {
      dpo_loss: loss,
      accuracy: correct / pairs,
      margin: margin / pairs,
      chosen_reward: chosenReward / pairs,
      rejected_reward: rejectedReward / pairs,
      num_pairs: pairs,
    },
  };
}

/**
 * The reference logprobs DPO needs: for each datum, the full sequence (model input plus the last
 * target token) scored by `sampler` (a sampling client on the reference weights), without the
 * first position, which has no logprob. Entry j is then the logprob of `target_tokens[j]`.
 * Requests run concurrently.
 */
export async function computeReferenceLogprobs(
  sampler: Pick<SamplingClient, "computeLogprobs">,
  data: readonly Datum[],
): Promise<Float32Array[]> {
  const requests = data.map((d, i) => {
    const targets = d.lossFnInputs.target_tokens;
    if (targets?.shape.length !== 1 || targets.size === 0) {
      throw new TinkerValidationError(
        `data[${i}] needs 1-D target_tokens to rebuild its full sequence`,
        `data[${i}].lossFnInputs.target_tokens`,
      );
    }
    const dense = targets.toDense();
    const full = d.modelInput.appendInt(dense[dense.length - 1]!);
    return Promise.resolve(sampler.computeLogprobs(full)).then((lps) => {
      if (lps.length !== targets.size + 1) {
        throw new TinkerValidationError(
          `computeLogprobs returned ${lps.length} values for a ${targets.size + 1}-token sequence (data[${i}])`,
          `data[${i}]`,
        );
      }
      return Float32Array.from(lps.slice(1), (v) => v ?? 0);
    });
  });
  return Promise.all(requests);
}
