import type { TensorData } from "./tensor-data.js";

/** Result of `forward` / `forwardBackward`. There is no `loss` field: read `metrics["loss:sum"]`. */
export interface ForwardBackwardOutput {
  /** Informational record type, e.g. `"ArrayRecord"`. */
  lossFnOutputType: string;
  /** Per datum, in input order: e.g. `{ logprobs }` with the datum's leading dimension. */
  lossFnOutputs: Array<Record<string, TensorData>>;
  /** Keys are `name:reduction`, e.g. `loss:sum`. */
  metrics: Record<string, number>;
}

export interface OptimStepResponse {
  metrics?: Record<string, number>;
}

export type StopReason = "stop" | "length";

export interface SampledSequence {
  stopReason: StopReason;
  tokens: number[];
  /** Logprob of each sampled token under the sampling distribution's model. */
  logprobs?: number[];
}

export interface SampleResponse {
  sequences: SampledSequence[];
  /** One per prompt token; `null` where not computed (always the first). */
  promptLogprobs?: Array<number | null>;
  /** Per prompt position: up to k `[tokenId, logprob]` pairs, or `null`. */
  topkPromptLogprobs?: Array<Array<[number, number]> | null>;
  promptCacheHitTokens: number;
}
