/**
 * Finding the answer in a model response or a reference solution: the last `\boxed{}`, the GSM8K
 * `####` line, or (for unboxed responses) the stated / last number.
 */
import { TinkerValidationError } from "../client/errors.js";

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

const BOX_COMMANDS = ["\\boxed", "\\fbox"] as const;

/**
 * The content of the last `\boxed{...}` (or `\fbox{...}`) in `text`, or `null` when there is none.
 *
 * Braces nest (`\boxed{\frac{1}{2}}` gives `\frac{1}{2}`), escaped braces `\{ \}` do not count, a box
 * that is never closed (a truncated sample) is ignored, and the brace-less form `\boxed 5` is accepted.
 * "Last" is by position in the text. Empty boxes are skipped: models often restate the instruction
 * ("answer in \boxed{} format") after answering, and an empty box holds no answer.
 */
export function extractBoxed(text: string): string | null {
  let best: { start: number; content: string } | null = null;
  for (const cmd of BOX_COMMANDS) {
    let from = 0;
    for (;;) {
      const at = text.indexOf(cmd, from);
      if (at < 0) break;
      from = at + cmd.length;
      const next = text.charCodeAt(from);
      // `\boxedx` is another command, not a box.
      if ((next >= 65 && next <= 90) || (next >= 97 && next <= 122)) continue;
      const found = readBoxArgument(text, from);
      if (found === null || found.trim() === "") continue;
      if (best === null || at > best.start) best = { start: at, content: found };
    }
  }
  return best === null ? null : best.content.trim();
}

/** The argument after a box command starting at `i`: a balanced `{...}` group, or a bare token. */
function readBoxArgument(text: string, i: number): string | null {
  let j = i;
  while (j < text.length && (text[j] === " " || text[j] === "\t")) j++;
  if (text[j] === "{") {
    let depth = 0;
    for (let k = j; k < text.length; k++) {
      const c = text[k];
      if (c === "\\") {
        k++; // skip the escaped character (`\{`, `\}`, `\\`)
      } else if (c === "{") {
        depth++;
      } else if (c === "}") {
        depth--;
        if (depth === 0) return text.slice(j + 1, k);
      }
    }
    return null; // never closed
  }
  if (j === i) return null; // `\boxed` directly followed by something other than `{` or a space
  const m = /^-?[A-Za-z0-9.]+/.exec(text.slice(j, j + 64));
  if (m === null) return null;
  return m[0].replace(/\.$/, "");
}

/**
 * The final answer of a GSM8K reference solution: the text after the last `####` line, with
 * thousands separators removed (`"#### 1,234"` gives `"1234"`).
 *
 * @throws TinkerValidationError (field `solution`) when the solution has no `####` answer.
 */
export function extractGsm8kFinalAnswer(solution: string): string {
  const lines = solution.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (line.startsWith("####")) {
      const answer = cleanFinalAnswer(line.slice(4));
      if (answer !== "") return answer;
      break;
    }
  }
  // A `####` that is not at the start of a line (e.g. "so the answer is #### 42").
  const matches = [...solution.matchAll(/####\s*(.+)/g)];
  const last = matches[matches.length - 1];
  if (last !== undefined) {
    const answer = cleanFinalAnswer(last[1]!);
    if (answer !== "") return answer;
  }
  throw new TinkerValidationError(
    `no GSM8K final answer found: a reference solution must end with a line "#### <answer>" ` +
      `(got ${JSON.stringify(solution.length > 80 ? solution.slice(0, 77) + "..." : solution)})`,
    "solution",
  );
}

function cleanFinalAnswer(raw: string): string {
  let s = raw.trim();
  if (s.startsWith(":")) s = s.slice(1).trim();
  return s.replaceAll(",", "").trim();
}

const NUMBER_IN_TEXT = /-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+/g;

/** The answer of an unboxed response (see {@link lenientAnswerGrader}), or `null`. */
export function extractLooseAnswer(text: string): string | null {
  const hashes = [...text.matchAll(/####\s*([^\n]+)/g)];
  const lastHash = hashes[hashes.length - 1];
  if (lastHash !== undefined) return lastHash[1]!.trim();
  const stated = [
    ...text.matchAll(/answer\s*(?:is|:)\s*\**\s*(-?\$?\d[\d,]*(?:\.\d+)?(?:\s*\/\s*\d+)?%?)/gi),
  ];
  const lastStated = stated[stated.length - 1];
  if (lastStated !== undefined) return lastStated[1]!.trim();
  const bold = [...text.matchAll(/\*\*\s*(-?\$?\d[\d,]*(?:\.\d+)?%?)\s*\*\*/g)];
  const lastBold = bold[bold.length - 1];
  if (lastBold !== undefined) return lastBold[1]!.trim();
  const numbers = text.match(NUMBER_IN_TEXT);
  const lastNumber = numbers?.[numbers.length - 1];
  return lastNumber === undefined ? null : lastNumber.replace(/,$/, "");
}
