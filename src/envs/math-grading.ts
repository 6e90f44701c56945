/**
 * Answer extraction and grading for math word problems (GSM8K and friends).
 *
 * Behaviour follows the tinker-cookbook's `math_grading` (last `\boxed{}`, `####` answers, mathd-style
 * normalisation) with numeric equivalence done exactly on rationals instead of through a CAS.
 * Deliberate differences from the Python cookbook, all covered by tests:
 * - the `####` fallback path also removes thousands separators (Python keeps them there);
 * - `\frac{36}{2}` grades equal to `18`, and `2/4` equal to `1/2` (Python rejects an unreduced fraction,
 *   and any comparison where exactly one side is an integer);
 * - `0.5` equals `1/2` because both are the same rational, not through a special case.
 */
import { TinkerValidationError } from "../client/errors.js";
import { parseNumber, Rational } from "./math-numbers.js";

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

// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

/** Commands whose braced argument is kept as plain text. */
const TEXT_WRAPPERS =
  /\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mbox|hbox|boxed|fbox|operatorname)\s*\{/g;

/** Replace every `\text{...}`-like command by its argument, braces matched (arguments may nest). */
function unwrapTextCommands(input: string): string {
  let s = input;
  for (;;) {
    TEXT_WRAPPERS.lastIndex = 0;
    const m = TEXT_WRAPPERS.exec(s);
    if (m === null) return s;
    const open = m.index + m[0].length - 1;
    let depth = 0;
    let close = -1;
    for (let k = open; k < s.length; k++) {
      const c = s[k];
      if (c === "\\") k++;
      else if (c === "{") depth++;
      else if (c === "}" && --depth === 0) {
        close = k;
        break;
      }
    }
    // An unclosed wrapper keeps the rest of the string as its content.
    s =
      close < 0
        ? s.slice(0, m.index) + " " + s.slice(open + 1)
        : s.slice(0, m.index) + " " + s.slice(open + 1, close) + " " + s.slice(close + 1);
  }
}

const UNIT_WORDS = new Set(
  (
    "dollar dollars usd cent cents euro euros pound pounds yen rupee rupees " +
    "degree degrees cm centimeter centimeters centimetre centimetres mm millimeter millimeters " +
    "m meter meters metre metres km kilometer kilometers kilometre kilometres " +
    "mile miles ft foot feet inch inches yard yards " +
    "second seconds sec secs minute minutes min mins hour hours hr hrs day days week weeks " +
    "month months year years " +
    "g gram grams kg kilogram kilograms lb lbs ounce ounces oz liter liters litre litres ml gallon gallons " +
    "mph kph km/h unit units sq square cubic percent"
  ).split(" "),
);

const SCALE_WORDS: Record<string, bigint> = {
  thousand: 1000n,
  million: 1_000_000n,
  billion: 1_000_000_000n,
  trillion: 1_000_000_000_000n,
};

/**
 * A canonical text form of an answer: LaTeX wrappers unwrapped (`\text{}`, `\left(`, `^\circ`,
 * `\$`, `\%`, `\dfrac` -> `\frac`), a short `x =` prefix dropped, spaces and trailing periods removed,
 * lower-cased. Two answers with the same normal form are equal; numbers are also compared by value
 * in {@link gradeAnswer}.
 */
export function normalizeAnswer(answer: string): string {
  return stripSpaces(cleanLatex(answer)).toLowerCase();
}

/** LaTeX and typography clean-up shared by the string and the numeric comparison. */
function cleanLatex(answer: string): string {
  // NFKC (full-width digits, ligatures) only when needed: it dominates the cost on ASCII input.
  let s = /[\u0080-\uffff]/.test(answer) ? answer.normalize("NFKC") : answer;
  s = s.replace(/\u2212|\u2013|\u2014/g, "-"); // minus sign and dashes
  s = s.replace(/[\u00a0\u2009\u202f\u2007]/g, " "); // non-breaking and thin spaces
  s = s.replace(/\n/g, " ");
  s = s.replace(/\\\\/g, "\\");
  s = unwrapTextCommands(s);
  s = s.replace(/\\[dt]frac/g, "\\frac");
  s = s.replace(/\\left\b|\\right\b|\\big\b|\\Big\b/g, "");
  // A unit word, so that "40^\circ F" reads as 40 followed by units.
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°/g, " degrees ");
  s = s.replace(/\\[!,;: ]|\\quad|\\qquad|~/g, " ");
  s = s.replace(/\{,\}/g, ","); // 1{,}000
  s = s.replace(/\\\$|\$/g, "");
  s = s.replace(/\\%/g, "%");
  s = s.replace(/\\(?:cdot|times)/g, "*");
  s = s.replace(/\\displaystyle|\\mathrm(?![a-z])/g, "");
  s = s.trim();
  // "x = 5", "k=3": a short left-hand side is a label, not part of the answer.
  s = s.replace(/^[A-Za-z][A-Za-z_0-9]{0,2}\s*=\s*/, "");
  s = s.replace(/^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*/i, "");
  s = s.replace(/[\s.]+$/, ""); // trailing period(s)
  return s.trim();
}

function stripSpaces(s: string): string {
  return s.replace(/\s+/g, "");
}

// ---------------------------------------------------------------------------------------------
// Numeric reading
// ---------------------------------------------------------------------------------------------

/** A number read from an answer, with how it was written (decimals compare with a tolerance). */
export interface NumericAnswer {
  readonly value: Rational;
  /** Written with a decimal point or exponent, so rounding in the answer is plausible. */
  readonly inexact: boolean;
  /** Written with a trailing `%`. */
  readonly percent: boolean;
}

/**
 * Read `answer` as a single number, ignoring units and words around it (`"$1,200 dollars"` -> 1200,
 * `"\frac{3}{4}"` -> 3/4, `"7 1/2 hours"` -> 15/2, `"25%"` -> 25 with `percent`). Returns `null` when the
 * answer is not one number (an expression, a tuple, text, or several numbers).
 */
export function readNumericAnswer(answer: string): NumericAnswer | null {
  return readNumericCleaned(cleanLatex(answer));
}

function readNumericCleaned(cleaned: string): NumericAnswer | null {
  let s = cleaned;
  if (s === "") return null;
  // "3 \times 5 = 15": a worked arithmetic chain; the value is its right-hand end.
  const eq = s.lastIndexOf("=");
  if (eq > 0 && /^[\d\s.,+\-*/()]+$/.test(s.slice(0, eq).replace(/=/g, ""))) {
    s = s.slice(eq + 1).trim();
  }
  // Parenthesised single value: "(5)".
  const paren = /^\(([^(),]*)\)$/.exec(s);
  if (paren !== null) s = paren[1]!.trim();
  let percent = false;
  if (/%$/.test(s) || /\s*percent$/i.test(s)) {
    percent = true;
    s = s.replace(/\s*(?:%|percent)$/i, "").trim();
  }
  const direct = parseNumber(s);
  if (direct !== null) return { value: direct.value, inexact: direct.inexact, percent };

  // Strip units and words around a lone number: "12 apples", "$5 per hour", "about 3.5 km^2".
  const m =
    /^((?:[A-Za-z][A-Za-z'’]*\s+)*?)([-+]?(?:\\frac\s*\{[^{}]+\}\s*\{[^{}]+\}|\d+\s*\/\s*\d+(?![\d.])|(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s+\d+\/\d+)?(?:\s*\\frac\s*\{\d+\}\s*\{\d+\})?))\s*(%?)\s*([A-Za-z(][A-Za-z\s'’/.()-]*(?:\^\s*\{?\d\}?)?)?$/.exec(
      s,
    );
  if (m === null) return null;
  const lead = m[1]!.trim().toLowerCase();
  const num = m[2]!;
  const pct = m[3] === "%";
  const tail = (m[4] ?? "").trim().toLowerCase();
  // Words before the number are filler ("about", "a total of") unless they negate it.
  if (lead !== "" && /\b(?:not|no|never|isn't|except)\b/.test(lead)) return null;
  const parsed = parseNumber(num);
  if (parsed === null) return null;
  let value = parsed.value;
  if (tail !== "") {
    const firstWord = tail.replace(/^\(/, "").split(/[\s^)]+/)[0]!;
    const scale = SCALE_WORDS[firstWord];
    if (scale !== undefined) {
      value = value.mul(Rational.fromBigInt(scale));
    } else if (firstWord === "percent") {
      percent = true;
    } else if (!UNIT_WORDS.has(firstWord) && firstWord.length < 2) {
      // A single letter right after a number is more likely a variable ("5 x") than a unit.
      return null;
    }
  }
  return { value, inexact: parsed.inexact, percent: percent || pct };
}

// ---------------------------------------------------------------------------------------------
// Grading
// ---------------------------------------------------------------------------------------------

/** Absolute floor and relative part of the tolerance used when a decimal is involved. */
const ABS_TOL = 1e-6;
const REL_TOL = 1e-9;

function numbersEqual(a: NumericAnswer, b: NumericAnswer): boolean {
  const candidates: Rational[] = [a.value];
  // "25%" against "25" or against "0.25": both readings are accepted (the cookbook strips `%`).
  if (a.percent !== b.percent) candidates.push(a.percent ? a.value.div100() : a.value);
  const target = [b.value];
  if (a.percent !== b.percent) target.push(b.percent ? b.value.div100() : b.value);
  for (const x of candidates) {
    for (const y of target) {
      if (x.equals(y)) return true;
      if (a.inexact || b.inexact) {
        const fx = x.toNumber();
        const fy = y.toNumber();
        const tol = Math.max(ABS_TOL, REL_TOL * Math.max(Math.abs(fx), Math.abs(fy)));
        if (Math.abs(fx - fy) <= tol) return true;
      }
    }
  }
  return false;
}

const PLAIN_INT = /^-?\d{1,300}$/;

/** Split `"(1, 2)"`, `"[1,2]"` or `"1, 2"` into elements; `null` when it is not a list. */
function splitList(s: string): string[] | null {
  let body = s.trim();
  const open = body[0];
  const close = body[body.length - 1];
  if ((open === "(" || open === "[") && (close === ")" || close === "]")) {
    const inner = body.slice(1, -1);
    if (/[()[\]]/.test(inner)) return null;
    body = inner;
  }
  if (!body.includes(",")) return null;
  // "1,000" / "12,345.5" are numbers, not lists.
  if (/^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(body.trim())) return null;
  const parts = body.split(",").map((p) => p.trim());
  return parts.some((p) => p === "") ? null : parts;
}

function gradeAtom(given: string, reference: string): boolean {
  const gc = cleanLatex(given);
  const rc = cleanLatex(reference);
  if (gc === "") return false;
  // Numbers first: "7 3/4" and "73/4" have the same spaceless text but different values.
  const gn = readNumericCleaned(gc);
  const rn = readNumericCleaned(rc);
  if (gn !== null && rn !== null) return numbersEqual(gn, rn);
  const g = stripSpaces(gc).toLowerCase();
  const r = stripSpaces(rc).toLowerCase();
  return g === r || looseForm(g) === looseForm(r);
}

/** Last-resort textual comparison: braces and `\sqrt2` vs `\sqrt{2}` spellings. */
function looseForm(s: string): string {
  return s
    .replace(/\\sqrt(\w)/g, "\\sqrt{$1}")
    .replace(/\\frac(\d)(\d)/g, "\\frac{$1}{$2}")
    .replace(/[{}]/g, "");
}

/**
 * Whether the extracted answer `given` matches `reference`.
 *
 * Equal after {@link normalizeAnswer}, or the same number (`"1,000"` = `"1000"`, `"18.00"` = `"18"`,
 * `"\frac{1}{2}"` = `"0.5"`, `"$12 dollars"` = `"12"`, `"25%"` = `"25"`); decimals compare within
 * max(1e-6, 1e-9 * |value|), fractions exactly. Lists and tuples compare element by element in order.
 * An empty `given` is never correct.
 */
export function gradeAnswer(given: string, reference: string): boolean {
  const g = given.trim();
  if (g === "") return false;
  if (g === reference.trim()) return true;
  // Fast path for the common GSM8K case: two plain integers.
  if (PLAIN_INT.test(g) && PLAIN_INT.test(reference.trim())) {
    return BigInt(g) === BigInt(reference.trim());
  }
  if (gradeAtom(given, reference)) return true;
  const gl = splitList(cleanLatex(given));
  const rl = splitList(cleanLatex(reference));
  if (gl === null || rl === null || gl.length !== rl.length) return false;
  return gl.every((g, i) => gradeAtom(g, rl[i]!));
}

// ---------------------------------------------------------------------------------------------
// Grader interface
// ---------------------------------------------------------------------------------------------

/** The verdict of a {@link Grader} on one model response. */
export interface GradeResult {
  /** The response's answer matches the reference. */
  readonly correct: boolean;
  /** The response has the requested answer format (e.g. a `\boxed{}`); omit when not applicable. */
  readonly formatOk?: boolean;
  /** The answer the grader read from the response, or `null` when it found none. */
  readonly extracted: string | null;
}

/**
 * Grades a full model response against a reference answer. Implement it to plug a different answer
 * format or checker (an LLM judge, unit tests, ...) into {@link Gsm8kEnv} or your own `ProblemEnv`.
 */
export interface Grader {
  grade(response: string, reference: string): GradeResult | Promise<GradeResult>;
}

/** A {@link Grader} that answers synchronously. */
export interface SyncGrader extends Grader {
  grade(response: string, reference: string): GradeResult;
}

/**
 * The default GSM8K/math grader, as in the cookbook's RL env: the answer is the last `\boxed{}` of the
 * response ({@link extractBoxed}), the format is OK when there is one, and correctness is
 * {@link gradeAnswer}. A response without a box is wrong.
 */
export const boxedAnswerGrader: SyncGrader = {
  grade(response: string, reference: string): GradeResult {
    const extracted = extractBoxed(response);
    return {
      correct: extracted !== null && gradeAnswer(extracted, reference),
      formatOk: extracted !== null,
      extracted,
    };
  },
};

/**
 * A lenient grader for evaluating models that were not asked for a box: the last `\boxed{}`, else a
 * `#### x` line, else "answer is x" / "answer: x", else the last bold number, else the last number.
 * `formatOk` says whether a box was used.
 */
export const lenientAnswerGrader: SyncGrader = {
  grade(response: string, reference: string): GradeResult {
    const boxed = extractBoxed(response);
    const extracted = boxed ?? extractLooseAnswer(response);
    return {
      correct: extracted !== null && gradeAnswer(extracted, reference),
      formatOk: boxed !== null,
      extracted,
    };
  },
};

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
