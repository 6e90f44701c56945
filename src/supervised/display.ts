import { TinkerValidationError } from "../client/errors.js";
import type { Datum } from "../client/types/datum.js";
import type { Tokenizer } from "../tokenizers/types.js";

/** Options of {@link formatDatumColored}. */
export interface FormatDatumOptions {
  /** The loss input that colours tokens. Default `"weights"` (use `"advantages"` for RL). */
  key?: string;
  /**
   * Use ANSI colours. Default: on unless the `NO_COLOR` environment variable is set. Without
   * colour, spans with a positive value are wrapped in `[[…]]` and negative ones in `{{…}}`.
   */
  color?: boolean;
}

const GREEN = "\x1b[32m";
const YELLOW = "\x1b[33m";
const RED = "\x1b[31m";
const RESET = "\x1b[0m";

type Sign = -1 | 0 | 1;

/**
 * The datum's full sequence as text, coloured by the value each token is trained with: green
 * above 0, yellow at 0, red below 0. Runs of tokens with the same sign are decoded together, so
 * multi-byte characters split across tokens print correctly.
 */
export function formatDatumColored(
  datum: Datum,
  tokenizer: Tokenizer,
  options: FormatDatumOptions = {},
): string {
  const key = options.key ?? "weights";
  const color = options.color ?? !process.env.NO_COLOR;
  const targets = datum.lossFnInputs.target_tokens?.toDense();
  const values = datum.lossFnInputs[key]?.toDense();
  if (targets === undefined || values === undefined) {
    const have = Object.keys(datum.lossFnInputs).join(", ");
    throw new TinkerValidationError(
      `formatDatumColored needs loss inputs "target_tokens" and "${key}"; the datum has: ${have} (pass { key } naming one of them)`,
      targets === undefined ? "lossFnInputs.target_tokens" : `lossFnInputs.${key}`,
    );
  }
  const first = datum.modelInput.chunks[0];
  const firstToken = first?.type === "encoded_text" ? first.tokens[0] : undefined;
  const tokens = firstToken === undefined ? Array.from(targets) : [firstToken, ...targets];
  const signs: Sign[] = tokens.map((_, i) => {
    if (firstToken !== undefined && i === 0) return 0;
    const v = values[firstToken === undefined ? i : i - 1] ?? 0;
    return v > 0 ? 1 : v < 0 ? -1 : 0;
  });
  let out = "";
  let start = 0;
  for (let i = 1; i <= tokens.length; i++) {
    if (i < tokens.length && signs[i] === signs[start]) continue;
    const text = tokenizer.decode(tokens.slice(start, i));
    const s = signs[start]!;
    if (color) out += `${s > 0 ? GREEN : s < 0 ? RED : YELLOW}${text}${RESET}`;
    else out += s > 0 ? `[[${text}]]` : s < 0 ? `{{${text}}}` : text;
    start = i;
  }
  return out;
}
