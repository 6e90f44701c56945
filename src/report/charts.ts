/**
 * Which training curves the report draws: each chart lists candidate metric keys and keeps the
 * ones the run logged, so an SFT run gets loss and learning-rate charts, an RL run reward,
 * accuracy and KL, and a chart with no data is left out.
 */

/** One chart: x is the step, one y series per metric key. */
export interface ChartSpec {
  id: string;
  title: string;
  /** Axis label of y. */
  unit: string;
  series: { label: string; values: (number | null)[] }[];
  steps: number[];
}

interface ChartDef {
  id: string;
  title: string;
  unit: string;
  /** Keys matched exactly, or a RegExp over all keys. */
  keys: readonly (string | RegExp)[];
}

const CHARTS: readonly ChartDef[] = [
  {
    id: "loss",
    title: "Loss (negative log-likelihood per token)",
    unit: "nats",
    keys: ["train_mean_nll", "test/nll", /^(train\/)?loss$/],
  },
  { id: "bpb", title: "Bits per byte (test)", unit: "bits", keys: ["test/bpb"] },
  {
    id: "reward",
    title: "Reward",
    unit: "mean reward",
    keys: ["env/all/reward/total", /^test\/env\/all\/reward\/total$/],
  },
  {
    id: "accuracy",
    title: "Accuracy and format",
    unit: "fraction",
    keys: [
      "env/all/correct",
      "test/env/all/correct",
      "env/all/format",
      "test/env/all/format",
      /^test\/.*accuracy$/,
    ],
  },
  { id: "lr", title: "Learning rate", unit: "lr", keys: ["learning_rate", "optim/lr"] },
  { id: "tokens", title: "Throughput", unit: "tokens/s", keys: [] },
  {
    id: "kl",
    title: "KL(sampler || learner)",
    unit: "nats",
    keys: ["optim/kl_sample_train_v1", "optim/kl_sample_train_v2"],
  },
  { id: "entropy", title: "Entropy of sampled tokens", unit: "nats", keys: ["optim/entropy"] },
];

function matchingKeys(defKeys: ChartDef["keys"], present: readonly string[]): string[] {
  const out: string[] = [];
  for (const k of defKeys) {
    const hits =
      typeof k === "string" ? present.filter((p) => p === k) : present.filter((p) => k.test(p));
    for (const h of hits) if (!out.includes(h)) out.push(h);
  }
  return out;
}

/**
 * Tokens per second of each step: `num_tokens` over the growth of `time/total` since the previous
 * row (the first row uses its own `time/total`). Null where either is missing or time did not move.
 */
export function tokensPerSecond(rows: readonly Record<string, number>[]): (number | null)[] {
  let prevTime = 0;
  return rows.map((r) => {
    const tokens = r.num_tokens;
    const time = r["time/total"];
    if (time === undefined) return null;
    const dt = time - prevTime;
    prevTime = time;
    return tokens !== undefined && dt > 0 ? tokens / dt : null;
  });
}

/** The charts for a run's metrics rows (sorted by step; rows without a step are dropped). */
export function chartSpecs(metrics: readonly Record<string, number>[]): ChartSpec[] {
  const rows = metrics.filter((r) => typeof r.step === "number").sort((a, b) => a.step! - b.step!);
  const present = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort();
  const steps = rows.map((r) => r.step!);
  const specs: ChartSpec[] = [];
  for (const def of CHARTS) {
    const series =
      def.id === "tokens"
        ? [{ label: "tokens/s", values: tokensPerSecond(rows) }]
        : matchingKeys(def.keys, present).map((key) => ({
            label: key,
            values: rows.map((r) => r[key] ?? null),
          }));
    const drawn = series.filter((s) => s.values.some((v) => v !== null));
    if (drawn.length > 0) {
      specs.push({ id: def.id, title: def.title, unit: def.unit, series: drawn, steps });
    }
  }
  return specs;
}
