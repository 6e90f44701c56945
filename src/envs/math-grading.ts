/**
 * Answer extraction and grading for math word problems (GSM8K and friends).
 *
 * Behaviour follows the tinker-cookbook's `math_grading` (last `\boxed{}`, `####` answers, mathd-style
 * normalisation) with numeric equivalence done exactly on rationals instead of through a CAS.
 * Deliberate differences from the Python cookbook, all covered by tests:
 * - the `####` fallback path also removes thousands separators (Python keeps them there);
 * - `\frac{36}{2}` grades equal to `18`, and `2/4` equal to `1/2` (Python rejects an unreduced fraction,
 *   and any comparison where exactly one side is an integer);
 * - `0.5` equals `1/2` because both are the same rational, not through a special case;
 * - empty boxes are skipped when looking for the last one (see `extractBoxed`).
 * The extraction functions live in `math-extract.ts` and are re-exported here; graders of whole
 * responses are in `graders.ts`.
 */
import { parseNumber, Rational } from "./math-numbers.js";

export { extractBoxed, extractGsm8kFinalAnswer, extractLooseAnswer } from "./math-extract.js";

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
