/**
 * Recipe overheads, each against a baseline measured in the same run:
 *
 * (a) Host-side time of one RL step of 128 groups x 16 samples (arithmetic env): rendering the
 *     prompts, rollout bookkeeping, parsing and grading, advantages, datum assembly, metrics and
 *     rollout summaries, with a scripted policy standing in for the sampler. Reported as a share
 *     of the whole step on the local engine (`RLRecipe`, one step of the same shape).
 * (b) SFT steps per second with `submitAhead: 1` against `submitAhead: 0`, interleaved rounds
 *     against the local server (tiny-bytes, GSM8K rows), as a ratio per round.
 *
 *   npx tsx bench/recipes/run.ts [rounds]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ServiceClient } from "../../src/client/service-client.js";
import { deriveSeed, Prng } from "../../src/datasets/prng.js";
import { ArithmeticDataset } from "../../src/envs/arithmetic-env.js";
import { rolloutGroup, type TokenPolicy } from "../../src/envs/rollouts.js";
import { startLocalServer } from "../../src/local/server/server.js";
import {
  assembleTrainingData,
  computeAdvantages,
  computeTrajectoryMetrics,
  rolloutSummaryRecords,
} from "../../src/recipes/rl/data-processing.js";
import { arithmeticRL } from "../../src/recipes/rl/datasets.js";
import { RLRecipe } from "../../src/recipes/rl/recipe.js";
import { getRenderer } from "../../src/renderers/registry.js";
import { loadTokenizer } from "../../src/tokenizers/loader.js";
import { gsm8kSft } from "../../test/recipes/fixtures.js";
import { writeBenchResults } from "../write-results.js";

const rounds = Number(process.argv[2] ?? 3);
const GROUPS = 128;
const GROUP_SIZE = 16;
const MAX_TOKENS = 8;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const tokenizer = await loadTokenizer("tiny-bytes");
const renderer = getRenderer("qwen3_instruct", tokenizer);
const stopId = renderer.getStopSequences()[0] as number;

/** A scripted sampler: a short number and the stop token, with made-up logprobs. */
function scriptedPolicy(step: number, group: number): TokenPolicy {
  return async (_ob, _stop, { envIndex }) => {
    const rng = new Prng(deriveSeed(0, step, group, envIndex));
    const text = String(rng.nextInt(200));
    const tokens = [...tokenizer.encode(text, { addSpecialTokens: false }), stopId];
    return { tokens, logprobs: tokens.map(() => -1 - rng.nextFloat()), stopReason: "stop" };
  };
}

/** The host-side work of one RL step (everything but sampling and training). */
async function hostStep(step: number): Promise<number> {
  const dataset = new ArithmeticDataset({ renderer, batchSize: GROUPS, groupSize: GROUP_SIZE });
  const t0 = performance.now();
  const builders = dataset.getBatch(step);
  const groups = await Promise.all(
    builders.map((b, g) => rolloutGroup(b, scriptedPolicy(step, g))),
  );
  const tags = builders.map((b) => b.loggingTags());
  computeTrajectoryMetrics(groups, { tags });
  const { data } = assembleTrainingData(groups, computeAdvantages(groups));
  const summaries = rolloutSummaryRecords(groups, {
    split: "train",
    iteration: step,
    samplingClientStep: step,
    tags,
    decode: (ids) => tokenizer.decode(ids),
  });
  const text = summaries.map((s) => JSON.stringify(s)).join("\n");
  if (data.length !== GROUPS * GROUP_SIZE || text.length === 0) throw new Error("bad host step");
  return (performance.now() - t0) / 1000;
}

const dataDir = await mkdtemp(join(tmpdir(), "tinker-ts-bench-recipes-"));
const server = await startLocalServer({
  dataDir,
  presets: ["tiny-bytes"],
  logger: { info: () => undefined, warn: () => undefined, error: (m: string) => console.error(m) },
});
const service = new ServiceClient({
  baseUrl: server.url,
  apiKey: "tml-local",
  logLevel: "error",
  env: {},
});

try {
  // (a) RL: host-side share of a step.
  const hostTimes: number[] = [];
  for (let r = 0; r < rounds; r++) hostTimes.push(await hostStep(r));
  const rl = new RLRecipe({
    model: "tiny-bytes",
    logDir: join(dataDir, "rl"),
    service,
    progress: false,
    learningRate: 1e-3,
    loraRank: 16,
    maxTokens: MAX_TOKENS,
    maxSteps: 1,
    saveEvery: 0,
    evalEvery: 0,
    dataset: arithmeticRL({ groupsPerBatch: GROUPS, groupSize: GROUP_SIZE }),
  });
  const t0 = performance.now();
  await rl.run();
  const rlStep = (performance.now() - t0) / 1000;
  const host = median(hostTimes);

  // (b) SFT: submitAhead 1 vs 0, interleaved.
  const sftRatios: number[] = [];
  const sftRows: Array<{ round: number; ahead1: number; ahead0: number }> = [];
  const steps = 16;
  const sftRate = async (submitAhead: number, round: number) => {
    const start = performance.now();
    await gsm8kSft(
      { logDir: join(dataDir, `sft-${submitAhead}-${round}`), service },
      { rows: steps * 2, testSize: 0, batchSize: 2, epochs: 1, evalEvery: 0, submitAhead },
    ).run();
    return steps / ((performance.now() - start) / 1000);
  };
  await sftRate(1, -1); // warm-up (JIT, kernels, tokenizer), not timed
  for (let r = 0; r < rounds; r++) {
    const ahead0 = await sftRate(0, r);
    const ahead1 = await sftRate(1, r);
    sftRows.push({ round: r, ahead1, ahead0 });
    sftRatios.push(ahead1 / ahead0);
  }

  console.log("\n(a) RL step, 128 groups x 16 samples, arithmetic env, tiny-bytes");
  console.table({
    "host-side work (median)": { seconds: host.toFixed(3) },
    "whole step on the local engine": { seconds: rlStep.toFixed(2) },
    "host share": { seconds: `${((100 * host) / rlStep).toFixed(2)} %` },
  });
  console.log("(b) SFT steps/s, submitAhead 1 vs 0 (batch 2, 16 steps per run)");
  console.table(
    sftRows.map((r) => ({
      round: r.round,
      "ahead 1": r.ahead1.toFixed(2),
      "ahead 0": r.ahead0.toFixed(2),
      ratio: (r.ahead1 / r.ahead0).toFixed(3),
    })),
  );
  console.log(`median ratio ${median(sftRatios).toFixed(3)}`);
  writeBenchResults("recipes", {
    rl: {
      groups: GROUPS,
      groupSize: GROUP_SIZE,
      maxTokens: MAX_TOKENS,
      hostSecondsPerRound: hostTimes,
      hostSecondsMedian: host,
      engineStepSeconds: rlStep,
      hostShare: host / rlStep,
    },
    sft: { rounds: sftRows, medianRatio: median(sftRatios) },
  });
} finally {
  await service.close();
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
