import type { ModelInput } from "../client/types/model-input.js";
import type { SampleResponse, StopReason } from "../client/types/outputs.js";
import type { SamplingParams } from "../client/types/params.js";
import type { Message } from "../renderers/types.js";

/** Stop strings, or stop token ids (as a renderer's `getStopSequences()` returns). */
export type StopCondition = readonly string[] | readonly number[];

/** What the completers need from a sampler: the `SamplingClient.sample` shape. */
export interface SamplingClientLike {
  sample(
    prompt: ModelInput,
    numSamples: number,
    params: SamplingParams,
  ): PromiseLike<SampleResponse>;
}

/** Sampled tokens with their logprobs under the sampling policy. */
export interface TokensWithLogprobs {
  readonly tokens: number[];
  /** One per token; `undefined` when the sampler returned none. */
  readonly logprobs: number[] | undefined;
  readonly stopReason: StopReason;
}

/** The RL policy interface: tokens in, tokens (and their logprobs) out. */
export interface TokenCompleter {
  complete(
    modelInput: ModelInput,
    stop: StopCondition,
    options?: { maxTokens?: number },
  ): Promise<TokensWithLogprobs>;
}

/** Messages in, the next assistant message out (judges, opponents, chat). */
export interface MessageCompleter {
  complete(messages: readonly Message[]): Promise<Message>;
}
