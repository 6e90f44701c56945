import { APIResponseValidationError, TinkerValidationError } from "../client/errors.js";
import type { ModelInput } from "../client/types/model-input.js";
import type { SampleResponse } from "../client/types/outputs.js";
import type { SamplingParams } from "../client/types/params.js";
import type { Message, ParsedResponse, Renderer } from "../renderers/types.js";
import type {
  MessageCompleter,
  SamplingClientLike,
  StopCondition,
  TokenCompleter,
  TokensWithLogprobs,
} from "./types.js";

/** Sampling settings shared by the completers. */
export interface CompleterSamplingOptions {
  /** Tokens to generate at most. Required: the server default is too small for most uses. */
  maxTokens: number;
  /** Default 1. */
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
}

function checkMaxTokens(maxTokens: unknown): void {
  if (typeof maxTokens !== "number" || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new TinkerValidationError(
      `maxTokens must be a positive integer, got ${String(maxTokens)}`,
      "maxTokens",
    );
  }
}

function samplingParams(
  o: CompleterSamplingOptions,
  stop: StopCondition,
  maxTokens: number,
): SamplingParams {
  const params: SamplingParams = { maxTokens, temperature: o.temperature ?? 1, stop };
  if (o.topP !== undefined) params.topP = o.topP;
  if (o.topK !== undefined) params.topK = o.topK;
  if (o.seed !== undefined) params.seed = o.seed;
  return params;
}

/** The sequence of a one-sample response; a response without one is the server's fault. */
function onlySequence(res: SampleResponse): SampleResponse["sequences"][number] {
  const seq = res.sequences[0];
  if (seq === undefined) {
    throw new APIResponseValidationError(
      "the sampler returned no sequences for a request of 1 sample",
    );
  }
  return seq;
}

/** A {@link TokenCompleter} over a sampling client: one sample per call. */
export class TinkerTokenCompleter implements TokenCompleter {
  readonly #client: SamplingClientLike;
  readonly #options: CompleterSamplingOptions;

  constructor(samplingClient: SamplingClientLike, options: CompleterSamplingOptions) {
    checkMaxTokens(options.maxTokens);
    this.#client = samplingClient;
    this.#options = { ...options };
  }

  /** Sample one continuation of `modelInput` until `stop` or `maxTokens` (per call, else the default). */
  async complete(
    modelInput: ModelInput,
    stop: StopCondition,
    options: { maxTokens?: number } = {},
  ): Promise<TokensWithLogprobs> {
    const maxTokens = options.maxTokens ?? this.#options.maxTokens;
    checkMaxTokens(maxTokens);
    const res = await this.#client.sample(
      modelInput,
      1,
      samplingParams(this.#options, stop, maxTokens),
    );
    const seq = onlySequence(res);
    return { tokens: seq.tokens, logprobs: seq.logprobs, stopReason: seq.stopReason };
  }
}

/** Options of {@link TinkerMessageCompleter}. */
export interface MessageCompleterOptions extends CompleterSamplingOptions {
  /** Default: the renderer's stop sequences. */
  stopCondition?: StopCondition;
}

/**
 * A {@link MessageCompleter}: renders the conversation's generation prompt, samples once and
 * parses the result into an assistant message (content, thinking and tool calls).
 */
export class TinkerMessageCompleter implements MessageCompleter {
  readonly #tokens: TinkerTokenCompleter;
  readonly #renderer: Renderer;
  readonly #stopCondition: StopCondition | undefined;

  constructor(
    samplingClient: SamplingClientLike,
    renderer: Renderer,
    options: MessageCompleterOptions,
  ) {
    this.#tokens = new TinkerTokenCompleter(samplingClient, options);
    this.#renderer = renderer;
    this.#stopCondition = options.stopCondition;
  }

  /** The parsed message and how the sample ended (`malformed` when it was cut off). */
  async completeWithTermination(messages: readonly Message[]): Promise<ParsedResponse> {
    const prompt = this.#renderer.buildGenerationPrompt(messages);
    const stop = this.#stopCondition ?? this.#renderer.getStopSequences();
    const { tokens } = await this.#tokens.complete(prompt, stop);
    return this.#renderer.parseResponse(tokens);
  }

  /** The next assistant message (content, thinking, tool calls) for `messages`. */
  async complete(messages: readonly Message[]): Promise<Message> {
    const { message } = await this.completeWithTermination(messages);
    return {
      role: "assistant",
      content: message.content,
      ...(message.toolCalls !== undefined ? { toolCalls: message.toolCalls } : {}),
      ...(message.unparsedToolCalls !== undefined
        ? { unparsedToolCalls: message.unparsedToolCalls }
        : {}),
    };
  }
}
