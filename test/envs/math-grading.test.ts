import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { Prng } from "../../src/datasets/prng.js";
import { boxedAnswerGrader, lenientAnswerGrader } from "../../src/envs/graders.js";
import {
  extractBoxed,
  extractGsm8kFinalAnswer,
  extractLooseAnswer,
  gradeAnswer,
  normalizeAnswer,
  readNumericAnswer,
} from "../../src/envs/math-grading.js";
import { parseNumber, Rational } from "../../src/envs/math-numbers.js";
import { GSM8K_DIR } from "../fixture-paths.js";

const GSM8K_TEST = join(GSM8K_DIR, "test.jsonl");

describe("extractBoxed", () => {
  const cases: [string, string | null][] = [
    ["The answer is \\boxed{42}.", "42"],
    ["First \\boxed{3}, then corrected: \\boxed{5}", "5"],
    ["\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"],
    ["\\boxed{\\text{\\$1{,}200}}", "\\text{\\$1{,}200}"],
    ["nested \\boxed{\\boxed{7}}", "7"], // the inner box starts last
    ["escaped \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"],
    ["brace-less \\boxed 5.", "5"],
    ["brace-less negative \\boxed -12 apples", "-12"],
    ["\\fbox{9}", "9"],
    ["\\boxed{1} and later \\fbox{2}", "2"],
    ["\\fbox{1} and later \\boxed{2}", "2"],
    ["truncated \\boxed{12", null],
    ["closed then truncated \\boxed{8} \\boxed{9", "8"],
    ["no box at all: 42", null],
    ["\\boxedx{3} is another command", null],
    ["spaces \\boxed{  18  }", "18"],
    ["answer then restated instruction: \\boxed{18}, in \\boxed{} format", "18"],
    ["only an empty box \\boxed{}", null],
    ["", null],
  ];
  it.each(cases)("%j -> %j", (text, expected) => {
    expect(extractBoxed(text)).toBe(expected);
  });
});

describe("extractGsm8kFinalAnswer", () => {
  it("takes the text after the last #### line and removes commas", () => {
    expect(extractGsm8kFinalAnswer("Step 1 <<2*3=6>>6\n#### 1,234")).toBe("1234");
    expect(extractGsm8kFinalAnswer("a\n#### 5\nnote\n####  -7 ")).toBe("-7");
    expect(extractGsm8kFinalAnswer("work\n#### : 18")).toBe("18");
  });
  it("falls back to an inline #### and, unlike the Python cookbook, removes commas there too", () => {
    expect(extractGsm8kFinalAnswer("so the result is #### 2,500")).toBe("2500");
  });
  it("throws a validation error naming the field when there is no answer", () => {
    expect(() => extractGsm8kFinalAnswer("no final answer here")).toThrow(TinkerValidationError);
    try {
      extractGsm8kFinalAnswer("just text");
    } catch (e) {
      expect((e as TinkerValidationError).field).toBe("solution");
      expect((e as Error).message).toMatch(/#### <answer>/);
    }
    expect(() => extractGsm8kFinalAnswer("####   ")).toThrow(/no GSM8K final answer/);
  });
});

describe("gradeAnswer: hand-written cases", () => {
  const correct: [string, string][] = [
    ["42", "42"],
    ["1,000", "1000"],
    ["1,234,567", "1234567"],
    ["1{,}000", "1000"],
    ["1\\,000", "1000"],
    ["1 000", "1000"],
    ["18.00", "18"],
    ["18.0", "18"],
    ["18.", "18"],
    ["$18", "18"],
    ["\\$18", "18"],
    ["\\$1,200.00", "1200"],
    ["-5", "-5"],
    ["−5", "-5"],
    ["- 5", "-5"],
    ["(-5)", "-5"],
    ["x = -5", "-5"],
    ["k=3", "3"],
    ["\\frac{1}{2}", "0.5"],
    ["\\dfrac{3}{4}", "0.75"],
    ["\\tfrac{3}{4}", "3/4"],
    ["\\frac12", "1/2"],
    ["-\\frac{1}{4}", "-0.25"],
    ["\\frac{-1}{4}", "-1/4"],
    ["\\dfrac{36}{2}", "18"], // Python cookbook: wrong (one side integer)
    ["2/4", "1/2"], // Python cookbook: wrong (unreduced fraction)
    ["7 1/2", "7.5"],
    ["7\\frac{1}{2}", "15/2"],
    ["25%", "25"],
    ["25\\%", "25"],
    ["25%", "0.25"],
    ["25 percent", "25"],
    ["12 apples", "12"],
    ["\\text{12 apples}", "12"],
    ["12 \\text{ dollars}", "12"],
    ["5 \\text{ cm}^2", "5"],
    ["3 hours", "3"],
    ["$5 per hour", "5"],
    ["about 3.5 km", "3.5"],
    ["a total of 60 cookies", "60"],
    ["The answer is 17", "17"],
    ["40^\\circ", "40"],
    ["40^{\\circ}", "40"],
    ["40°", "40"],
    ["\\left( 3 \\right)", "3"],
    ["\\textbf{9}", "9"],
    ["\\mathrm{10}", "10"],
    ["0.5", "\\frac{1}{2}"],
    ["3.5", "7/2"],
    [".5", "0.5"],
    ["1.5 \\times 10^{3}", "1500"],
    ["1.5e3", "1500"],
    ["3 million", "3000000"],
    ["2.9999999999", "3"], // floating-point noise in a computed answer
    ["(1, 2)", "(1,2)"],
    ["[1, 2.0]", "(1, 2)"],
    ["\\sqrt{2}", "\\sqrt2"],
    ["5.", "5"],
    ["  7  ", "7"],
    ["-\\$5", "-5"],
    ["\\$-5", "-5"],
    ["\\text{Answer: } 5", "5"],
    ["18 \\%", "18"],
    ["5km", "5"],
    ["\\boxed{18}", "18"],
    ["18\\text{ dollars}", "18"],
    ["1 1/2", "1.5"],
    ["+7", "7"],
    ["007", "7"],
    ["\\frac{3}{2}", "1\\frac{1}{2}"],
    ["\\text{Yes}", "yes"],
    ["18\\ \\text{dollars}", "18"],
    ["40^{\\circ} \\text{F}", "40"],
    ["\\frac{7}{2} \\text{ hours}", "3.5"],
    ["7/2 hours", "3.5"],
    ["18 (dollars)", "18"],
    ["3 \\times 5 = 15", "15"],
    ["6\\,000", "6000"],
    ["1{,}000{,}000", "1000000"],
  ];
  const wrong: [string, string][] = [
    ["41", "42"],
    ["", "42"],
    ["   ", "0"],
    ["-5", "5"],
    ["5", "-5"],
    ["1,000", "100"],
    ["10.5", "10"],
    ["18.01", "18"],
    ["0.33", "\\frac{1}{3}"],
    ["1/3", "0.3"],
    ["7 3/4", "73/4"],
    ["5x", "5"],
    ["not 5", "5"],
    ["3 and 5", "3"],
    ["12 apples and 3 pears", "12"],
    ["2x + 3", "5"],
    ["(1, 2)", "(2, 1)"],
    ["(1, 2)", "(1, 2, 3)"],
    ["1e3", "100"],
    ["\\frac{1}{2}", "2"],
    ["twelve", "12"],
    ["25%", "2.5"],
    ["1234", "1,235"],
    ["18 \\text{ and } 20", "18"],
    ["5\\pi", "5"],
    ["1.000", "1000"], // a decimal point, not a European thousands separator
    ["\\text{No}", "yes"],
    ["2x = 10", "10"], // the left side has a variable: not an arithmetic chain
    ["3 \\times 5 = 16", "15"],
  ];
  it(`has at least 60 hand-written cases (${correct.length + wrong.length})`, () => {
    expect(correct.length + wrong.length).toBeGreaterThanOrEqual(60);
  });
  it.each(correct)("%j matches %j", (given, ref) => {
    expect(gradeAnswer(given, ref)).toBe(true);
  });
  it.each(wrong)("%j does NOT match %j", (given, ref) => {
    expect(gradeAnswer(given, ref)).toBe(false);
  });
});

describe("graders on whole model responses", () => {
  const responses: [string, string, boolean, boolean][] = [
    // response, reference, correct, formatOk
    ["Janet has 16 - 3 - 4 = 9 eggs, so she makes 9 * 2 = $18. \\boxed{18}", "18", true, true],
    ["I first guessed \\boxed{20} but the right total is \\boxed{\\$1,250}.", "1250", true, true],
    ["The total is 1,250 dollars.", "1250", false, false],
    ["The answer is \\boxed{\\frac{3}{4}} of the pie", "0.75", true, true],
    ["So we get \\boxed{x = 12}", "12", true, true],
    ["Final: \\boxed{12 \\text{ marbles}}.", "12", true, true],
    ["That leaves \\boxed{-4} degrees", "-4", true, true],
    ["\\boxed{13}", "12", false, true],
    ["<think>maybe \\boxed{3}</think> Answer \\boxed{30}", "30", true, true],
    ["The answer is \\boxed{30", "30", false, false],
  ];
  it.each(responses)("boxed grader: %j vs %j", (response, ref, correct, formatOk) => {
    const r = boxedAnswerGrader.grade(response, ref);
    expect(r).toMatchObject({ correct, formatOk });
  });

  it("lenient grader falls back to ####, 'answer is', bold and the last number", () => {
    expect(lenientAnswerGrader.grade("work...\n#### 1,250", "1250")).toMatchObject({
      correct: true,
      formatOk: false,
      extracted: "1,250",
    });
    expect(lenientAnswerGrader.grade("So the answer is $72.", "72")).toMatchObject({
      correct: true,
    });
    expect(lenientAnswerGrader.grade("We get **15** in total, not 20.", "15").correct).toBe(true);
    expect(lenientAnswerGrader.grade("3 + 4 = 7, then 7 * 2 = 14", "14").correct).toBe(true);
    expect(lenientAnswerGrader.grade("no numbers", "14")).toMatchObject({
      correct: false,
      extracted: null,
    });
    expect(extractLooseAnswer("answer: 1/2")).toBe("1/2");
  });

  it("a user-supplied grader implements the same interface", async () => {
    const exact = {
      grade: (r: string, ref: string) => ({ correct: r.trim() === ref, extracted: r }),
    };
    expect(await exact.grade(" 5 ", "5")).toEqual({ correct: true, extracted: " 5 " });
  });
});

describe("normalisation and numbers", () => {
  it("normalizeAnswer unwraps LaTeX and labels", () => {
    expect(normalizeAnswer("\\text{ x = \\dfrac{1}{2} }")).toBe("\\frac{1}{2}");
    expect(normalizeAnswer("\\left( 1, 2 \\right).")).toBe("(1,2)");
  });
  it("readNumericAnswer returns null for non-numbers", () => {
    expect(readNumericAnswer("x+1")).toBeNull();
    expect(readNumericAnswer("1, 2")).toBeNull();
    expect(readNumericAnswer("")).toBeNull();
    expect(readNumericAnswer("12%")?.percent).toBe(true);
  });
  it("parseNumber reads exact rationals", () => {
    expect(parseNumber("1,234.50")?.value.toString()).toBe("2469/2");
    expect(parseNumber("-7 3/4")?.value.toString()).toBe("-31/4");
    expect(parseNumber("1/0")).toBeNull();
    expect(parseNumber("10^{-2}")?.value.toString()).toBe("1/100");
    expect(Rational.of(6n, -4n)?.toString()).toBe("-3/2");
    expect(parseNumber("12,34")).toBeNull(); // malformed thousands grouping is not a number
  });
});

describe("GSM8K test set", () => {
  const rows = readFileSync(GSM8K_TEST, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { question: string; answer: string });

  it("has 1319 rows and every reference answer grades correct against itself", () => {
    expect(rows.length).toBe(1319);
    const failures = rows
      .map((r) => extractGsm8kFinalAnswer(r.answer))
      .filter((a) => !gradeAnswer(a, a));
    expect(failures).toEqual([]);
  });

  it("every reference answer, boxed with $ and thousands separators, grades correct; off-by-one does not", () => {
    const failures: string[] = [];
    for (const r of rows) {
      const a = extractGsm8kFinalAnswer(r.answer);
      const n = Number(a);
      const pretty = Number.isInteger(n) ? n.toLocaleString("en-US") : a;
      const response = `Let me compute. ... So the final answer is \\boxed{\\$${pretty}}.`;
      if (!boxedAnswerGrader.grade(response, a).correct) failures.push(`boxed ${a}`);
      if (gradeAnswer(String(n + 1), a)) failures.push(`off-by-one ${a}`);
    }
    expect(failures).toEqual([]);
  });
});

describe("randomised formats of the same number", () => {
  it("every formatting of n grades equal to n, and n never equals a different number", () => {
    const rng = new Prng(11);
    const formats: ((n: number) => string)[] = [
      (n) => String(n),
      (n) => n.toLocaleString("en-US"),
      (n) => `\\$${n.toLocaleString("en-US")}`,
      (n) => `${n}.00`,
      (n) => `${n} \\text{ dollars}`,
      (n) => `\\text{${n} apples}`,
      (n) => `x = ${n}`,
      (n) => `\\frac{${2 * n}}{2}`,
      (n) => `\\boxed{${n}}`,
      (n) => (n < 0 ? `-\\$${-n}` : `\\$${n}`),
    ];
    const failures: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = rng.intBetween(0, 5_000_000) - 1_000_000;
      const f = formats[rng.nextInt(formats.length)]!;
      const given = f(n);
      if (!gradeAnswer(given, String(n))) failures.push(`${given} != ${n}`);
      const other = n + 1 + rng.nextInt(1000);
      if (gradeAnswer(given, String(other))) failures.push(`${given} == ${other}`);
    }
    expect(failures).toEqual([]);
  });
});
