import { TinkerValidationError } from "../client/errors.js";
import type { Tokenizer } from "../tokenizers/types.js";
import { ParseTermination } from "./types.js";

/**
 * Cut a sampled response at its single stop token. No stop token means the sample was truncated
 * (`malformed`); more than one means the model kept going past a turn end (`malformed`, text up
 * to the first one).
 */
export function textBeforeStopToken(
  tokens: ArrayLike<number>,
  tokenizer: Tokenizer,
  stopId: number,
): { text: string; termination: ParseTermination } {
  const ids = Array.from(tokens);
  const first = ids.indexOf(stopId);
  if (first < 0) return { text: tokenizer.decode(ids), termination: ParseTermination.MALFORMED };
  const text = tokenizer.decode(ids.slice(0, first));
  const again = ids.indexOf(stopId, first + 1);
  return {
    text,
    termination: again < 0 ? ParseTermination.STOP_SEQUENCE : ParseTermination.MALFORMED,
  };
}

/** The id of a token that must exist as a single vocabulary entry. */
export function requireTokenId(tokenizer: Tokenizer, token: string, rendererName: string): number {
  const id = tokenizer.tokenToId(token);
  if (id === undefined) {
    throw new TinkerValidationError(
      `renderer "${rendererName}" needs the token ${token}, which tokenizer "${tokenizer.name}" lacks; use the model's own tokenizer`,
      "tokenizer",
    );
  }
  return id;
}
