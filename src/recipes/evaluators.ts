/**
 * Evaluators run by the recipes every `evalEvery` steps, on the weights before that step: the
 * cookbook's two kinds, one reading a training client (e.g. held-out NLL), one a sampling client
 * (e.g. accuracy of sampled answers).
 */
import type { SamplingClient } from "../client/sampling-client.js";
import type { TrainingClient } from "../client/training-client.js";
import type { Datum } from "../client/types/datum.js";
import type { Tokenizer } from "../tokenizers/types.js";
import { bitsPerByte, meanNll, outputLogprobs } from "./supervised/metrics.js";

/** Metrics of an evaluation, merged into the step's metrics row. */
export type EvalMetrics = Record<string, number>;

export interface TrainingClientEvaluator {
  readonly kind: "training";
  evaluate(training: TrainingClient): Promise<EvalMetrics>;
}

export interface SamplingClientEvaluator {
  readonly kind: "sampling";
  evaluate(sampler: SamplingClient): Promise<EvalMetrics>;
}

export type Evaluator = TrainingClientEvaluator | SamplingClientEvaluator;

/** Held-out NLL and bits per byte: `<name>/nll`, `<name>/bpb` (the cookbook's `NLLEvaluator`). */
export class NllEvaluator implements TrainingClientEvaluator {
  readonly kind = "training";
  constructor(
    private readonly data: readonly Datum[],
    private readonly tokenizer: Pick<Tokenizer, "decode" | "isSpecialId">,
    private readonly name = "test",
  ) {}

  async evaluate(training: TrainingClient): Promise<EvalMetrics> {
    const out = await training.forward(this.data, "cross_entropy");
    const logprobs = outputLogprobs(out);
    return {
      [`${this.name}/nll`]: meanNll(logprobs, this.data),
      [`${this.name}/bpb`]: bitsPerByte(logprobs, this.data, this.tokenizer),
    };
  }
}

/**
 * Run `evaluators` one after another on the current weights. Sampling evaluators share one
 * sampling client on those weights, made only when one is present.
 */
export async function runEvaluators(
  evaluators: readonly Evaluator[],
  training: TrainingClient,
  sampler?: SamplingClient,
): Promise<EvalMetrics> {
  const metrics: EvalMetrics = {};
  let current = sampler;
  for (const e of evaluators) {
    if (e.kind === "training") {
      Object.assign(metrics, await e.evaluate(training));
    } else {
      current ??= await training.saveWeightsAndGetSamplingClient();
      Object.assign(metrics, await e.evaluate(current));
    }
  }
  return metrics;
}
