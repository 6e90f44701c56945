import { TinkerValidationError } from "../client/errors.js";
import { type Datum, makeDatum } from "../client/types/datum.js";
import {
  chunkLength,
  encodedText,
  ModelInput,
  type ModelInputChunk,
} from "../client/types/model-input.js";
import type { Message, Renderer } from "../renderers/types.js";
import { TrainOnWhat } from "../renderers/types.js";

/** How per-token weights are scaled: `"mean"` makes them sum to 1 (per-example mean loss). */
export type Reduction = "mean" | "none";

/** Options of {@link conversationToDatum}. */
export interface ConversationToDatumOptions {
  /** Default `"mean"`, as in the cookbook since v0.4.0. */
  reduction?: Reduction;
}

function checkMaxLength(maxLength: number | undefined): void {
  if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength >= 2)) {
    throw new TinkerValidationError(
      `maxLength must be an integer >= 2 (or undefined for no limit), got ${maxLength}`,
      "maxLength",
    );
  }
}

/** Keep the first `maxLength` tokens: text chunks may be cut, image chunks go whole. */
function truncate(chunks: readonly ModelInputChunk[], maxLength: number): ModelInputChunk[] {
  const out: ModelInputChunk[] = [];
  let used = 0;
  for (const c of chunks) {
    const n = chunkLength(c);
    if (used + n <= maxLength) {
      out.push(c);
      used += n;
      continue;
    }
    if (c.type === "encoded_text" && used < maxLength) {
      out.push(encodedText(c.tokens.subarray(0, maxLength - used)));
    }
    break;
  }
  return out;
}

/**
 * The next-token pair of a sequence: the input is every chunk with the last token removed; the
 * targets are every token but the first (0 at image positions). Input position `i` predicts
 * token `i + 1`.
 */
export function rightShiftedInputAndTargets(modelInput: ModelInput): {
  input: ModelInput;
  targets: Int32Array;
} {
  const chunks = modelInput.chunks;
  const last = chunks[chunks.length - 1];
  if (last === undefined || last.type !== "encoded_text" || modelInput.length < 2) {
    throw new TinkerValidationError(
      "a datum needs at least 2 tokens and must end with text; the sequence is too short or ends with an image",
      "modelInput",
    );
  }
  // Token `p` of the sequence is target `p - 1`; the first token is no target.
  const targets = new Int32Array(modelInput.length - 1);
  let at = -1;
  for (const c of chunks) {
    if (c.type === "encoded_text") {
      targets.set(at < 0 ? c.tokens.subarray(-at) : c.tokens, Math.max(at, 0));
    }
    at += chunkLength(c); // non-text positions stay 0
  }
  const inputChunks = chunks.slice(0, -1);
  if (last.tokens.length > 1) inputChunks.push(encodedText(last.tokens.subarray(0, -1)));
  return { input: new ModelInput(inputChunks), targets };
}

/**
 * Build a datum from a full sequence and one weight per token: truncate to `maxLength`, shift by
 * one (input = tokens[:-1], targets = tokens[1:], weights = weights[1:]) and apply `reduction`.
 */
export function datumFromModelInputWeights(
  modelInput: ModelInput,
  weights: ArrayLike<number>,
  maxLength?: number,
  reduction: Reduction = "none",
): Datum {
  checkMaxLength(maxLength);
  if (weights.length !== modelInput.length) {
    throw new TinkerValidationError(
      `weights has ${weights.length} entries but the sequence has ${modelInput.length} tokens; pass one weight per token`,
      "weights",
    );
  }
  if (reduction !== "mean" && reduction !== "none") {
    throw new TinkerValidationError(
      `reduction must be "mean" or "none", got "${String(reduction)}"`,
      "reduction",
    );
  }
  const chunks = (
    maxLength === undefined ? modelInput.chunks : truncate(modelInput.chunks, maxLength)
  ).filter((c) => c.type !== "encoded_text" || c.tokens.length > 0);
  while (chunks.length > 0 && chunks[chunks.length - 1]!.type !== "encoded_text") chunks.pop();
  const { input, targets } = rightShiftedInputAndTargets(new ModelInput(chunks));
  const w = new Float32Array(targets.length);
  for (let i = 0; i < w.length; i++) w[i] = weights[i + 1]!;
  if (reduction === "mean") {
    let sum = 0;
    for (const x of w) sum += x;
    if (sum > 0) for (let i = 0; i < w.length; i++) w[i] = w[i]! / sum;
  }
  return makeDatum(input, { weights: w, target_tokens: targets });
}

/**
 * The pre-v0.4 cookbook helper: cut `tokens` and `weights` to `maxLength`, then input =
 * tokens[:-1], targets = tokens[1:], weights = weights[1:]. No normalisation.
 */
export function datumFromTokensWeights(
  tokens: ArrayLike<number>,
  weights: ArrayLike<number>,
  maxLength?: number,
): Datum {
  if (tokens.length !== weights.length) {
    throw new TinkerValidationError(
      `tokens (${tokens.length}) and weights (${weights.length}) must have the same length`,
      "weights",
    );
  }
  return datumFromModelInputWeights(ModelInput.fromInts(tokens), weights, maxLength, "none");
}

/**
 * Render a conversation as one SFT datum: the renderer's supervised example (weights by
 * `trainOnWhat`, default all assistant messages), truncated to `maxLength`, shifted by one, with
 * weights scaled to sum to 1 under the default `reduction: "mean"`.
 */
export function conversationToDatum(
  messages: readonly Message[],
  renderer: Renderer,
  maxLength: number | undefined,
  trainOnWhat: TrainOnWhat = TrainOnWhat.ALL_ASSISTANT_MESSAGES,
  options: ConversationToDatumOptions = {},
): Datum {
  const { modelInput, weights } = renderer.buildSupervisedExample(messages, { trainOnWhat });
  return datumFromModelInputWeights(modelInput, weights, maxLength, options.reduction ?? "mean");
}
