import { APIResponseValidationError } from "../../client/errors.js";
import type { Datum } from "../../client/types/datum.js";
import type { ForwardBackwardOutput } from "../../client/types/outputs.js";
import type { Tokenizer } from "../../tokenizers/types.js";

/** A datum's per-token `weights` and `target_tokens` as plain arrays. */
export function datumWeightsAndTargets(d: Datum): { weights: Float32Array; targets: Int32Array } {
  const w = d.lossFnInputs.weights?.toDense();
  const t = d.lossFnInputs.target_tokens?.toDense();
  return {
    weights: w instanceof Float32Array ? w : Float32Array.from(w ?? []),
    targets: t instanceof Int32Array ? t : Int32Array.from(t ?? []),
  };
}

/** -sum(lp * w) / sum(w) over the whole batch (the cookbook's `compute_mean_nll`). */
export function meanNll(logprobs: readonly Float32Array[], data: readonly Datum[]): number {
  let num = 0;
  let den = 0;
  for (const [i, lp] of logprobs.entries()) {
    const { weights } = datumWeightsAndTargets(data[i]!);
    for (let j = 0; j < lp.length; j++) {
      num -= lp[j]! * weights[j]!;
      den += weights[j]!;
    }
  }
  return den > 0 ? num / den : Number.NaN;
}

/**
 * Bits per byte: the NLL in nats of the counted tokens over ln 2 x their UTF-8 bytes. A token counts
 * when its weight is above 0 and it is not special; bytes are measured by decoding each contiguous
 * run of counted tokens (so multi-byte characters split over tokens are counted once).
 */
export function bitsPerByte(
  logprobs: readonly Float32Array[],
  data: readonly Datum[],
  tokenizer: Pick<Tokenizer, "decode" | "isSpecialId">,
): number {
  let nats = 0;
  let bytes = 0;
  for (const [i, lp] of logprobs.entries()) {
    const { weights, targets } = datumWeightsAndTargets(data[i]!);
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) bytes += Buffer.byteLength(tokenizer.decode(run), "utf8");
      run = [];
    };
    for (let j = 0; j < lp.length; j++) {
      const id = targets[j]!;
      if (weights[j]! > 0 && !tokenizer.isSpecialId(id)) {
        nats -= lp[j]!;
        run.push(id);
      } else {
        flush();
      }
    }
    flush();
  }
  return bytes > 0 ? nats / (Math.LN2 * bytes) : Number.NaN;
}

/** Sum of model-input lengths of a batch. */
export function batchTokens(data: readonly Datum[]): number {
  let n = 0;
  for (const d of data) n += d.modelInput.length;
  return n;
}

/** Sum of weights of a batch (number of examples under mean reduction). */
export function batchLossWeight(data: readonly Datum[]): number {
  let n = 0;
  for (const d of data) for (const w of datumWeightsAndTargets(d).weights) n += w;
  return n;
}

/** The per-target logprobs of each datum of a forward(_backward) result. */
export function outputLogprobs(out: ForwardBackwardOutput): Float32Array[] {
  return out.lossFnOutputs.map((o, i) => {
    const lp = o.logprobs?.toDense();
    if (lp === undefined) {
      throw new APIResponseValidationError(
        `the server returned no logprobs for datum ${i}; the recipes need loss_fn_outputs[i].logprobs`,
      );
    }
    return lp instanceof Float32Array ? lp : Float32Array.from(lp);
  });
}
