/**
 * Exact rational numbers and a reader for the ways answers write a single number:
 * integers, thousands separators, decimals, exponents, `a/b`, `\frac{a}{b}` and mixed numbers.
 */

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

/** An exact fraction `num / den` in lowest terms with `den > 0`. */
export class Rational {
  readonly num: bigint;
  readonly den: bigint;

  private constructor(num: bigint, den: bigint) {
    this.num = num;
    this.den = den;
  }

  /** `num / den`, reduced. Returns `null` for a zero denominator. */
  static of(num: bigint, den: bigint): Rational | null {
    if (den === 0n) return null;
    const sign = den < 0n ? -1n : 1n;
    const g = gcd(num, den) || 1n;
    return new Rational((sign * num) / g, (sign * den) / g);
  }

  static fromBigInt(n: bigint): Rational {
    return new Rational(n, 1n);
  }

  /** Parse an unsigned decimal literal `123`, `12.50`, `.5`, `1.5e-3` exactly. */
  static fromDecimal(text: string): Rational | null {
    const m = /^(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d{1,4}))?$/.exec(text);
    if (m === null || (m[1] === "" && (m[2] ?? "") === "")) return null;
    const frac = m[2] ?? "";
    let num = BigInt((m[1] || "0") + frac);
    let den = 10n ** BigInt(frac.length);
    const exp = m[3] === undefined ? 0 : Number(m[3]);
    if (exp > 0) num *= 10n ** BigInt(exp);
    else if (exp < 0) den *= 10n ** BigInt(-exp);
    return Rational.of(num, den);
  }

  add(o: Rational): Rational {
    return Rational.of(this.num * o.den + o.num * this.den, this.den * o.den)!;
  }

  mul(o: Rational): Rational {
    return Rational.of(this.num * o.num, this.den * o.den)!;
  }

  div(o: Rational): Rational | null {
    return Rational.of(this.num * o.den, this.den * o.num);
  }

  neg(): Rational {
    return new Rational(-this.num, this.den);
  }

  div100(): Rational {
    return Rational.of(this.num, this.den * 100n)!;
  }

  equals(o: Rational): boolean {
    return this.num === o.num && this.den === o.den;
  }

  toNumber(): number {
    return Number(this.num) / Number(this.den);
  }

  toString(): string {
    return this.den === 1n ? `${this.num}` : `${this.num}/${this.den}`;
  }
}

/** A parsed number and whether it was written as a decimal (rounding plausible). */
export interface ParsedNumber {
  readonly value: Rational;
  readonly inexact: boolean;
}

/** `1,234,567.5`, `1 234`, `12.5`, `.5`, `1.5e3`: unsigned. */
const UNSIGNED =
  /^(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d{1,3}(?: \d{3})+|\d+(?:\.\d*)?(?:[eE][-+]?\d{1,4})?|\.\d+(?:[eE][-+]?\d{1,4})?)$/;

function unsigned(text: string): ParsedNumber | null {
  const t = text.trim();
  if (!UNSIGNED.test(t)) return null;
  const value = Rational.fromDecimal(t.replace(/[, ]/g, ""));
  if (value === null) return null;
  return { value, inexact: /[.eE]/.test(t) && !/^\d+\.0*$/.test(t.replace(/,/g, "")) };
}

function signed(text: string): ParsedNumber | null {
  const t = text.trim();
  const sign = t[0] === "-" ? -1 : 1;
  const body = t[0] === "-" || t[0] === "+" ? t.slice(1).trim() : t;
  const p = unsigned(body);
  if (p === null) return null;
  return sign < 0 ? { value: p.value.neg(), inexact: p.inexact } : p;
}

function ratio(a: ParsedNumber, b: ParsedNumber): ParsedNumber | null {
  const value = a.value.div(b.value);
  return value === null ? null : { value, inexact: a.inexact || b.inexact };
}

/**
 * Read `text` as exactly one number, or return `null`. Accepts an optional sign, thousands
 * separators, decimals, `e` exponents and `* 10^{k}`, `a/b`, `\frac{a}{b}` / `\frac ab`, and mixed
 * numbers (`7 3/4`, `7\frac{3}{4}`). Whitespace around the number is ignored.
 */
export function parseNumber(text: string): ParsedNumber | null {
  let t = text.trim();
  if (t === "") return null;
  // Outer braces from LaTeX grouping: "{12}".
  while (t.startsWith("{") && t.endsWith("}")) t = t.slice(1, -1).trim();

  const plain = signed(t);
  if (plain !== null) return plain;

  let sign = 1;
  if (t[0] === "-" || t[0] === "+") {
    sign = t[0] === "-" ? -1 : 1;
    t = t.slice(1).trim();
  }
  const apply = (p: ParsedNumber | null): ParsedNumber | null =>
    p === null || sign > 0 ? p : { value: p.value.neg(), inexact: p.inexact };

  // Scientific notation: 1.5 * 10^{3}, 10^6.
  const sci = /^(?:(.+?)\s*\*\s*)?10\s*\^\s*\{?\s*([-+]?\d{1,3})\s*\}?$/.exec(t);
  if (sci !== null) {
    const mant =
      sci[1] === undefined ? { value: Rational.fromBigInt(1n), inexact: false } : signed(sci[1]);
    if (mant === null) return null;
    const e = Number(sci[2]);
    const scale = Rational.fromBigInt(10n ** BigInt(Math.abs(e)));
    const value = e >= 0 ? mant.value.mul(scale) : mant.value.div(scale);
    return value === null ? null : apply({ value, inexact: mant.inexact });
  }

  const fracPart = readFraction(t);
  if (fracPart !== null) return apply(fracPart);

  // Mixed number: whole part then a fraction.
  const mixed = /^(\d+)\s*(\\frac.*|\s\d+\s*\/\s*\d+)$/.exec(t);
  if (mixed !== null) {
    const whole = Rational.fromBigInt(BigInt(mixed[1]!));
    const f = readFraction(mixed[2]!.trim());
    if (f === null || f.value.num < 0n) return null;
    return apply({ value: whole.add(f.value), inexact: f.inexact });
  }
  return null;
}

/** `a/b`, `\frac{a}{b}`, `\frac ab` (single digits), with signed parts inside the braces. */
function readFraction(t: string): ParsedNumber | null {
  const slash = /^([^/]+)\/([^/]+)$/.exec(t);
  if (slash !== null) {
    const a = signed(slash[1]!);
    const b = signed(slash[2]!);
    return a !== null && b !== null ? ratio(a, b) : null;
  }
  const braced = /^\\frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}$/.exec(t);
  if (braced !== null) {
    const a = signed(braced[1]!);
    const b = signed(braced[2]!);
    return a !== null && b !== null ? ratio(a, b) : null;
  }
  const short = /^\\frac\s*(\d)\s*(\d)$/.exec(t);
  if (short !== null) {
    return ratio(signed(short[1]!)!, signed(short[2]!)!);
  }
  return null;
}
