/**
 * Grading throughput: 100,000 model-style responses (boxed, plain, wrong, messy) graded against
 * integer / decimal / fraction references, compared with two baselines measured in the same run:
 * `extractBoxed` alone, and a naive grader (last `\boxed{...}` by regex, exact string compare).
 * Also reports how often each grader agrees with the known label of every generated response.
 *
 *   npx tsx bench/grading/run.ts [count]
 */
import { Prng } from "../../src/datasets/prng.js";
import { boxedAnswerGrader, lenientAnswerGrader } from "../../src/envs/graders.js";
import { extractBoxed } from "../../src/envs/math-extract.js";
import { writeBenchResults } from "../write-results.js";

interface Case {
  response: string;
  reference: string;
  /** Whether a correct boxed-answer grader should accept it. */
  label: boolean;
}

const FILLER = [
  "Let's think step by step.",
  "First, compute the total number of items.",
  "Janet has 16 eggs and eats 3 for breakfast, then bakes muffins with 4.",
  "She sells the remainder at the farmers' market for $2 per egg.",
  "Multiply the price by the quantity to get the revenue.",
];

function withCommas(n: number): string {
  return n.toLocaleString("en-US");
}

function makeCases(count: number, seed: number): Case[] {
  const rng = new Prng(seed);
  const cases: Case[] = [];
  for (let i = 0; i < count; i++) {
    const n = rng.intBetween(0, 2_000_000) - (rng.nextInt(20) === 0 ? 1_000_000 : 0);
    const ref = String(n);
    const wrong = String(n + 1 + rng.nextInt(9));
    const lead = Array.from(
      { length: 1 + rng.nextInt(4) },
      () => FILLER[rng.nextInt(FILLER.length)],
    ).join(" ");
    const kind = rng.nextInt(12);
    let response: string;
    let label: boolean;
    switch (kind) {
      case 0:
        response = `${lead} The answer is \\boxed{${ref}}.`;
        label = true;
        break;
      case 1:
        response = `${lead} So she makes \\boxed{\\$${withCommas(n)}} every day.`;
        label = true;
        break;
      case 2:
        response = `${lead} Initially \\boxed{${wrong}}, but correcting: \\boxed{${ref}}`;
        label = true;
        break;
      case 3:
        response = `${lead} Total: \\boxed{${ref} \\text{ dollars}}`;
        label = true;
        break;
      case 4:
        response = `${lead} \\boxed{${ref}.00}`;
        label = true;
        break;
      case 5:
        response = `${lead} x = ${ref}, so \\boxed{x = ${ref}}`;
        label = true;
        break;
      case 6:
        response = `${lead} The answer is \\boxed{${wrong}}.`;
        label = false;
        break;
      case 7:
        response = `${lead} The answer is ${ref}.`; // right number, but no box
        label = false;
        break;
      case 8:
        response = `${lead} \\boxed{\\frac{${2 * n}}{2}}`;
        label = true;
        break;
      case 9:
        response = `${lead} \\boxed{${ref}`; // truncated
        label = false;
        break;
      case 10:
        response = `${lead} We get \\boxed{${withCommas(n + 1000)}}`;
        label = false;
        break;
      default:
        response = `${lead} <think>\\boxed{${wrong}}</think> Final: \\boxed{\\textbf{${ref}}}`;
        label = true;
    }
    cases.push({ response, reference: ref, label });
  }
  return cases;
}

const naiveGrade = (response: string, reference: string): boolean => {
  const all = [...response.matchAll(/\\boxed\{([^}]*)\}/g)];
  const last = all[all.length - 1];
  return last !== undefined && last[1] === reference;
};

function time(label: string, cases: Case[], fn: (c: Case) => boolean, reps: number) {
  let agree = 0;
  for (const c of cases) if (fn(c) === c.label) agree++;
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    let sink = 0;
    for (const c of cases) if (fn(c)) sink++;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    runs.push(secs);
    if (sink < 0) console.log(sink);
  }
  runs.sort((a, b) => a - b);
  const median = runs[Math.floor(runs.length / 2)]!;
  return {
    label,
    seconds: median,
    answersPerSec: cases.length / median,
    agreement: agree / cases.length,
  };
}

const count = Number(process.argv[2] ?? 100_000);
const cases = makeCases(count, 2026);
const reps = 5;
const results = [
  time(
    "naive regex + string compare (baseline)",
    cases,
    (c) => naiveGrade(c.response, c.reference),
    reps,
  ),
  time("extractBoxed only (baseline)", cases, (c) => extractBoxed(c.response) !== null, reps),
  time(
    "boxedAnswerGrader (default GSM8K grader)",
    cases,
    (c) => boxedAnswerGrader.grade(c.response, c.reference).correct,
    reps,
  ),
  time(
    "lenientAnswerGrader",
    cases,
    (c) => lenientAnswerGrader.grade(c.response, c.reference).correct,
    reps,
  ),
];
const base = results[0]!.answersPerSec;
console.log(
  `grading ${count.toLocaleString("en-US")} model-style responses (median of ${reps} runs, node ${process.version})`,
);
console.log(
  [
    "grader".padEnd(44),
    "answers/s".padStart(12),
    "vs naive".padStart(9),
    "label agreement".padStart(16),
  ].join(" "),
);
for (const r of results) {
  console.log(
    [
      r.label.padEnd(44),
      Math.round(r.answersPerSec).toLocaleString("en-US").padStart(12),
      `${(r.answersPerSec / base).toFixed(2)}x`.padStart(9),
      `${(100 * r.agreement).toFixed(2)}%`.padStart(16),
    ].join(" "),
  );
}
writeBenchResults("grading", {
  count,
  reps,
  baseline: results[0]!.label,
  results: results.map((r) => ({ ...r, ratioVsBaseline: r.answersPerSec / base })),
});
