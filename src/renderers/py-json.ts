/**
 * JSON as Python reads and writes it, for tool-call arguments: HF chat templates receive them as
 * the dict `json.loads` gives and print them with `json.dumps(ensure_ascii=False)` (`tojson`).
 * Parsing into JS values would lose what Python keeps: `1.0` (a float), the digits of integers
 * beyond 2^53, and key order (JS objects put integer-like keys first).
 */

/** A number as written in the JSON text; Python reads it as an int or a float. */
export class PyNumber {
  constructor(readonly literal: string) {}
}

/** An object's entries in order; a repeated key keeps its first position and its last value, like a dict. */
export class PyObject {
  readonly entries: ReadonlyArray<readonly [string, PyJson]>;

  constructor(entries: Iterable<readonly [string, PyJson]>) {
    const byKey = new Map<string, PyJson>();
    for (const [k, v] of entries) byKey.set(k, v);
    this.entries = [...byKey];
  }
}

export type PyJson = null | boolean | string | PyNumber | PyObject | readonly PyJson[];

const NUMBER_RE = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
// Escapes and raw control characters are checked by JSON.parse of the matched string.
const STRING_RE = /"(?:[^"\\]|\\.)*"/sy;
const WHITESPACE_RE = /[ \t\n\r]*/y;

/** Parse strict JSON (RFC 8259) keeping number literals and entry order. Throws `SyntaxError`. */
export function parseJson(text: string): PyJson {
  let at = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${at} of JSON text`);
  };
  const skip = (): void => {
    WHITESPACE_RE.lastIndex = at;
    WHITESPACE_RE.exec(text);
    at = WHITESPACE_RE.lastIndex;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) return undefined;
    at = re.lastIndex;
    return m[0];
  };
  const value = (depth: number): PyJson => {
    if (depth > 512) fail("nesting too deep");
    skip();
    const c = text[at];
    if (c === "{") {
      at++;
      const entries: Array<[string, PyJson]> = [];
      skip();
      if (text[at] === "}") {
        at++;
        return new PyObject(entries);
      }
      for (;;) {
        skip();
        const key = match(STRING_RE) ?? fail("expected a string key");
        skip();
        if (text[at] !== ":") fail("expected ':'");
        at++;
        entries.push([JSON.parse(key) as string, value(depth + 1)]);
        skip();
        if (text[at] === ",") at++;
        else if (text[at] === "}") {
          at++;
          return new PyObject(entries);
        } else fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++;
      const items: PyJson[] = [];
      skip();
      if (text[at] === "]") {
        at++;
        return items;
      }
      for (;;) {
        items.push(value(depth + 1));
        skip();
        if (text[at] === ",") at++;
        else if (text[at] === "]") {
          at++;
          return items;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return JSON.parse(match(STRING_RE) ?? fail("invalid string")) as string;
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return v;
      }
    }
    const num = match(NUMBER_RE);
    if (num !== undefined) return new PyNumber(num);
    return fail(at >= text.length ? "unexpected end" : `unexpected character ${JSON.stringify(c)}`);
  };
  const out = value(0);
  skip();
  if (at < text.length) fail("unexpected text after the value");
  return out;
}

function isFloatLiteral(literal: string): boolean {
  return /[.eE]/.test(literal);
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Number.POSITIVE_INFINITY) return "Infinity";
  if (x === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mantissa, exp] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mantissa.replace(".", "");
  // The decimal point sits `point` digits into `digits` (CPython's `decpt`).
  const point = Number(exp) + 1;
  if (point > -4 && point <= 16) {
    if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
    if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}.0`;
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const e = point - 1;
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
}

/** How Python prints the number a JSON literal becomes (`str()` and `json.dumps` agree). */
export function pyNumberText(n: PyNumber): string {
  if (isFloatLiteral(n.literal)) return pyFloatRepr(Number(n.literal));
  return n.literal === "-0" ? "0" : n.literal;
}

/**
 * `json.dumps(value, ensure_ascii=False)`: `", "` between items, `": "` after keys. Also takes
 * plain JS values (tool specs), whose numbers print as JavaScript writes them.
 */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof PyNumber) return pyNumberText(value);
  if (value instanceof PyObject) {
    return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`).join(", ")}}`;
  }
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`);
    return `{${items.join(", ")}}`;
  }
  return JSON.stringify(value);
}

/** Python's `str(value)` for a scalar (`True`, `None`, `1.0`); containers print as {@link pythonJson}. */
export function pythonStr(value: PyJson): string {
  if (typeof value === "string") return value;
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null) return "None";
  if (value instanceof PyNumber) return pyNumberText(value);
  return pythonJson(value);
}

/** Compact JSON text (no spaces) with every number literal as written. */
export function compactJson(value: PyJson): string {
  if (value instanceof PyNumber) return value.literal;
  if (value instanceof PyObject) {
    return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${compactJson(v)}`).join(",")}}`;
  }
  if (Array.isArray(value)) return `[${value.map(compactJson).join(",")}]`;
  return JSON.stringify(value);
}
